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
recorders of one file take turns on an advisory file lock first, polled without blocking
the loop, so that the next one writes within a millisecond of the last one's commit.

On shutdown the queue is drained: nothing accepted is dropped. A transaction that fails on
a deadlock or serialization error (PostgreSQL, two nodes locking rows in different orders)
or on a locked SQLite file is retried whole; any other failure is reported to every waiter
of the batch, who tell their callers that nothing was stored.

When the database does not answer (connection refused or lost, server shutting down or
recovering, disk full) every waiter gets `DatabaseDown` (failures.py), saying whether the
write certainly left nothing behind (it failed before the commit) or may have been
committed (the connection was lost during the commit); the batch is not then tried item by
item. While the database is down the recorder makes one attempt a second and fails the
other writes at once (`DependencyState`), so that a crashed server is not sent a connection
attempt per request; its first success closes the breaker again.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from overture.history import rollups
from overture.history.failures import (
    DatabaseDown,
    DependencyDown,
    DependencyState,
    Unavailable,
    database_down,
)
from overture.store import Database
from overture.store.raw import Tx, pg_connect

log = logging.getLogger("overture.runtime")

# Runs inside the transaction: one result per item, in order.
Handler = Callable[[Tx, list[Any]], Awaitable[list[Any]]]
_Item = tuple[Handler, Any, asyncio.Future[Any]]
_RETRIES = 5
_BUSY_SECONDS = 30.0  # as the engine's busy_timeout (store/database.py)


class RecorderClosed(RuntimeError):
    pass


def rolled_back(exc: BaseException) -> bool:
    """Whether a write that failed with `exc` certainly left nothing behind: the recorder
    was closed before taking it, or the database refused one of its statements (an
    integrity or data error, raised before the commit, which then never happens). Any
    other failure, a lost connection during the commit say, may have been written."""
    if isinstance(exc, RecorderClosed):
        return True
    if isinstance(exc, DependencyDown):
        return exc.written is False
    if isinstance(exc, Unavailable):  # contention, a lock held elsewhere: nothing written
        return True
    if isinstance(exc, sqlite3.IntegrityError | sqlite3.DataError):
        return True
    code = getattr(exc, "sqlstate", None)  # psycopg
    return isinstance(code, str) and code[:2] in ("22", "23")


NOT_WRITTEN = (
    "the database is not answering, so nothing of this request was recorded; retry in a few seconds"
)
MAYBE_WRITTEN = (
    "the database stopped answering while this request was being recorded: it may or may "
    "not have been recorded; retry in a few seconds (an event with an event_id is stored "
    "once however often it is sent)"
)


class Recorder:
    def __init__(
        self, db: Database, *, max_batch: int = 2000, state: DependencyState | None = None
    ) -> None:
        self.db = db
        self.max_batch = max_batch
        # the node's view of the database, shared with its readers (failures.py)
        self.state = state or DependencyState("database")
        self._committing = False
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
                if not self.state.up and not self.state.may_try():
                    # known down: one attempt a second, not one per batch
                    self._answer(batch, [], DatabaseDown(NOT_WRITTEN))
                    continue
                results, error = await self._write(batch)
                if error is not None and len(batch) > 1 and not isinstance(error, Unavailable):
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
                    await self._take_writer_lock()
                    try:
                        await self._sqlite_transaction(groups, batch, results)
                    finally:
                        self._release_writer_lock()
                else:
                    await self._pg_transaction(groups, batch, results)
                error = None
                break
            except Exception as exc:
                if _retryable(exc) and attempt < _RETRIES - 1:
                    self._committing = False
                    self.retries += 1
                    await asyncio.sleep(0.005 * (attempt + 1))
                    continue
                error = self._failure(exc)
                if _retryable(exc):  # contention that outlasted the retries
                    error = Unavailable(
                        "the database is busy with conflicting writes; nothing of this "
                        "request was recorded; retry"
                    )
                    error.__cause__ = exc
                break
        self.batches += 1
        self.items += len(batch)
        if error is None:
            self.state.answered()
        else:
            self.failures += 1
            log.error("could not write %d items: %s", len(batch), error)
        return results, error

    def _failure(self, exc: Exception) -> Exception:
        """`exc` as the waiters get it: DatabaseDown when the database does not answer
        (with whether the commit was under way), else as raised."""
        committing, self._committing = self._committing, False
        if isinstance(exc, DatabaseDown) or not database_down(exc):
            return exc
        self.state.failed(exc)
        down = DatabaseDown(
            MAYBE_WRITTEN if committing else NOT_WRITTEN, written=None if committing else False
        )
        down.__cause__ = exc
        return down

    @staticmethod
    async def _run(
        tx: Tx, groups: dict[Handler, list[int]], batch: list[_Item], results: list[Any]
    ) -> None:
        for handler, indexes in groups.items():
            out = await handler(tx, [batch[i][1] for i in indexes])
            for i, r in zip(indexes, out, strict=True):
                results[i] = r
        await rollups.flush(tx)

    async def _sqlite_transaction(
        self, groups: dict[Handler, list[int]], batch: list[_Item], results: list[Any]
    ) -> None:
        if self._conn is None:
            self._conn = self.db.engine.raw_connection()  # with the engine's pragmas
            # never sleep inside SQLite (that would stall the loop): see _begin; and the
            # connection is the recorder's alone, closed at the end, never back in the pool
            self._conn.detach()
            self._conn.dbapi_connection.execute("PRAGMA busy_timeout=0")
        driver = self._conn.dbapi_connection
        cursor = driver.cursor()
        try:
            await self._begin(cursor)
            await self._run(Tx(cursor, sqlite=True), groups, batch, results)
            self._committing = True
            driver.commit()
            self._committing = False
        except BaseException:
            with contextlib.suppress(Exception):
                driver.rollback()
            raise
        finally:
            cursor.close()

    async def _begin(self, cursor: Any) -> None:
        """BEGIN IMMEDIATE: take the write lock now, not on the first write. Another
        connection may hold it (a deployment, an import, the design API in this very
        process): SQLite's own busy wait would block the event loop, so the recorder
        waits here, polling without blocking, for as long as the engine's busy timeout."""
        deadline = time.monotonic() + _BUSY_SECONDS
        for pause in _pauses(0.0005, 0.01):
            try:
                cursor.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc):
                    raise
                if time.monotonic() > deadline:  # not retried again by _write
                    raise Unavailable(
                        f"the database's write lock stayed taken for {_BUSY_SECONDS:.0f} s "
                        "(another process is writing); nothing of this request was recorded; "
                        "retry"
                    ) from exc
                await asyncio.sleep(pause)

    async def _pg_transaction(
        self, groups: dict[Handler, list[int]], batch: list[_Item], results: list[Any]
    ) -> None:
        if self._conn is None:
            self._conn = await pg_connect(self.db, autocommit=False)
        conn = self._conn
        try:
            async with conn.cursor() as cursor:
                await self._run(Tx(cursor, sqlite=False), groups, batch, results)
            self._committing = True
            await conn.commit()
            self._committing = False
        except BaseException:
            try:
                await conn.rollback()
            except Exception:  # the connection is gone: take a new one next time
                self._conn = None
                with contextlib.suppress(Exception):
                    await conn.close()
            raise

    async def _take_writer_lock(self) -> None:
        """Take turns with the other processes writing this SQLite file (see above). While
        another process holds the lock, this one keeps serving (what arrives meanwhile
        joins the batch after this one): it polls without blocking, every 0.1 to 1 ms. A
        blocking wait stalled the whole process for the other's transaction, and a second
        worker then added 20 % instead of nearly doubling the throughput."""
        if self._lock_path is None:
            return
        if self._lock_file is None:
            self._lock_file = open(self._lock_path, "a")  # noqa: SIM115 (kept open)
        for pause in _pauses(0.0001, 0.001):
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                await asyncio.sleep(pause)

    def _release_writer_lock(self) -> None:
        if self._lock_file is not None:
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


def _pauses(first: float, most: float) -> Iterator[float]:
    """Waits between polls: doubling from `first` up to `most`, for ever."""
    pause = first
    while True:
        yield pause
        pause = min(pause * 2, most)


def _retryable(exc: BaseException) -> bool:
    code = getattr(exc, "sqlstate", None)
    if code in ("40001", "40P01"):  # serialization failure, deadlock
        return True
    return "database is locked" in str(exc)
