"""Group commit: many requests' writes in one database transaction.

Each decision and each event batch hands its write to the recorder and waits; the recorder
takes whatever has queued (up to `max_batch` items) and writes it all in one transaction,
then wakes every waiter with its own result. A request is answered only once its write is
committed, so an acknowledged event or proposition survives the process being killed;
the cost of a commit is shared by every request that arrived while the previous one ran,
which is what lets a single SQLite file keep up with thousands of requests a second.

The recorder is a task on the event loop, writing through the driver (raw.Tx): on SQLite it
runs once per turn of the loop with every item submitted during that turn, without
suspending; on PostgreSQL it yields at each round trip, and what arrives meanwhile forms
the next batch. On SQLite, several processes (`--workers`) share one file and its single
write lock; SQLite's own wait for that lock sleeps in steps of up to 100 ms, so the
recorders of one file take turns on an advisory file lock first, which wakes the next one
the moment the last one committed.

On shutdown the queue is drained: nothing accepted is dropped. A transaction that fails on
a deadlock or serialization error (PostgreSQL, two nodes locking rows in different orders)
or on a locked SQLite file is retried whole; any other failure is reported to every waiter
of the batch, who tell their callers that nothing was stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from overture.store import Database
from overture.store.raw import Tx, pg_connect

log = logging.getLogger("overture.runtime")

# Runs inside the transaction: one result per item, in order.
Handler = Callable[[Tx, list[Any]], Awaitable[list[Any]]]
_Item = tuple[Handler, Any, asyncio.Future[Any]]
_RETRIES = 5


class RecorderClosed(RuntimeError):
    pass


def rolled_back(exc: BaseException) -> bool:
    """Whether a write that failed with `exc` certainly left nothing behind: the recorder
    was closed before taking it, or the database refused one of its statements (an
    integrity or data error, raised before the commit, which then never happens). Any
    other failure, a lost connection during the commit say, may have been written."""
    if isinstance(exc, RecorderClosed):
        return True
    if isinstance(exc, sqlite3.IntegrityError | sqlite3.DataError):
        return True
    code = getattr(exc, "sqlstate", None)  # psycopg
    return isinstance(code, str) and code[:2] in ("22", "23")


class Recorder:
    def __init__(self, db: Database, *, max_batch: int = 2000) -> None:
        self.db = db
        self.max_batch = max_batch
        self._pending: list[_Item] = []
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.batches = 0
        self.items = 0
        self.retries = 0
        self.failures = 0
        self._conn: Any = None  # SQLite: a pooled connection; PostgreSQL: an asyncio one
        self._lock_path: Path | None = None
        self._lock_file: Any = None
        if db.is_sqlite:
            database = make_url(db.url).database
            if database and database != ":memory:":
                self._lock_path = Path(database + "-overture-writer")

    async def submit(self, handler: Handler, item: Any) -> Any:
        """Write `item` with `handler` in the next batch; its result once committed."""
        if self._closed:
            raise RecorderClosed("the runtime is shutting down; nothing was stored")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((handler, item, future))
        if self._task is None:
            # runs after every task ready in this turn of the loop has submitted its item
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return await future

    @property
    def queued(self) -> int:
        """Writes waiting for the next transaction."""
        return len(self._pending)

    async def aclose(self) -> None:
        """Stop accepting, write what is queued, close the connection."""
        self._closed = True
        if self._task is not None:
            await asyncio.shield(self._task)
        await self._drain()
        await self._close_connection()

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                results, error = await self._write(batch)
                if error is not None and len(batch) > 1:
                    # one item the database refuses must not fail its neighbours: each
                    # is written alone, and only the one at fault gets the error
                    for item in batch:
                        self._answer([item], *await self._write([item]))
                else:
                    self._answer(batch, results, error)
        finally:
            self._task = None

    @staticmethod
    def _answer(batch: list[_Item], results: list[Any], error: BaseException | None) -> None:
        for i, (_h, _item, future) in enumerate(batch):
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(results[i])

    async def _write(self, batch: list[_Item]) -> tuple[list[Any], BaseException | None]:
        """Write a batch in one transaction (retried when the database asks to):
        (a result per item, None) or (_, the error that stopped it)."""
        groups: dict[Handler, list[int]] = {}
        for i, (handler, *_rest) in enumerate(batch):
            groups.setdefault(handler, []).append(i)
        results: list[Any] = [None] * len(batch)
        error: BaseException | None = None
        for attempt in range(_RETRIES):
            try:
                if self.db.is_sqlite:
                    with self._writer_lock():
                        await self._sqlite_transaction(groups, batch, results)
                else:
                    await self._pg_transaction(groups, batch, results)
                error = None
                break
            except Exception as exc:
                error = exc
                if not _retryable(exc) or attempt == _RETRIES - 1:
                    break
                self.retries += 1
                await asyncio.sleep(0.005 * (attempt + 1))
        self.batches += 1
        self.items += len(batch)
        if error is not None:
            self.failures += 1
            log.error("could not write %d items: %s", len(batch), error)
        return results, error

    @staticmethod
    async def _run(
        tx: Tx, groups: dict[Handler, list[int]], batch: list[_Item], results: list[Any]
    ) -> None:
        for handler, indexes in groups.items():
            out = await handler(tx, [batch[i][1] for i in indexes])
            for i, r in zip(indexes, out, strict=True):
                results[i] = r

    async def _sqlite_transaction(
        self, groups: dict[Handler, list[int]], batch: list[_Item], results: list[Any]
    ) -> None:
        if self._conn is None:
            self._conn = self.db.engine.raw_connection()  # with the engine's pragmas
        driver = self._conn.driver_connection
        cursor = driver.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")  # take the write lock now, not on first write
            await self._run(Tx(cursor, sqlite=True), groups, batch, results)
            driver.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                driver.rollback()
            raise
        finally:
            cursor.close()

    async def _pg_transaction(
        self, groups: dict[Handler, list[int]], batch: list[_Item], results: list[Any]
    ) -> None:
        if self._conn is None:
            self._conn = await pg_connect(self.db, autocommit=False)
        conn = self._conn
        try:
            async with conn.cursor() as cursor:
                await self._run(Tx(cursor, sqlite=False), groups, batch, results)
            await conn.commit()
        except BaseException:
            try:
                await conn.rollback()
            except Exception:  # the connection is gone: take a new one next time
                self._conn = None
                with contextlib.suppress(Exception):
                    await conn.close()
            raise

    @contextlib.contextmanager
    def _writer_lock(self) -> Iterator[None]:
        """Take turns with the other processes writing this SQLite file (see above)."""
        if self._lock_path is None:
            yield
            return
        if self._lock_file is None:
            self._lock_file = open(self._lock_path, "a")  # noqa: SIM115 (kept open)
        fcntl.flock(self._lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    async def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                result = conn.close()
                if asyncio.iscoroutine(result):
                    await result
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


def _retryable(exc: BaseException) -> bool:
    code = getattr(exc, "sqlstate", None)
    if code in ("40001", "40P01"):  # serialization failure, deadlock
        return True
    return "database is locked" in str(exc)
