"""Group commit: many requests' writes in one database transaction.

Each decision and each event batch hands its write to the recorder and waits; one thread
takes whatever has queued (up to `max_batch` items) and writes it all in one transaction,
then wakes every waiter with its own result. A request is answered only once its write is
committed, so an acknowledged event or proposition survives the process being killed;
the cost of a commit is shared by every request that arrived while the previous one ran,
which is what lets a single SQLite file keep up with thousands of requests a second.

The thread writes through one connection of its own, with the driver's cursor (raw.Tx).
On SQLite, several processes (`--workers`) share one file and its single write lock;
SQLite's own wait for that lock sleeps in steps of up to 100 ms, so the recorders of one
file take turns on an advisory file lock first, which wakes the next one the moment the
last one committed.

On shutdown the queue is drained before the thread stops: nothing accepted is dropped.
A transaction that fails on a deadlock or serialization error (PostgreSQL, two nodes
locking rows in different orders) is retried whole; any other failure is reported to
every waiter of the batch, who tell their callers that nothing was stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from overture.runtime.raw import Tx
from overture.store import Database

log = logging.getLogger("overture.runtime")

# Runs in the recorder's thread, inside the transaction: one result per item, in order.
Handler = Callable[[Tx, list[Any]], list[Any]]
_Item = tuple[Handler, Any, asyncio.Future[Any], asyncio.AbstractEventLoop]
_RETRIES = 5


class RecorderClosed(RuntimeError):
    pass


class Recorder:
    """Group commit of the runtime's writes (see the module's doc).

    `inline` (the default on SQLite) writes on the event loop's own thread instead, once
    per turn of the loop, with every item submitted during that turn: SQLite writes cost
    CPU, not waiting (WAL without fsync per commit), and a thread of its own would spend
    its time waiting for the interpreter lock the loop holds (each statement releases
    and re-takes it, and each re-take can wait a whole switch interval, 5 ms).
    """

    def __init__(
        self,
        db: Database,
        *,
        max_batch: int = 2000,
        name: str = "recorder",
        inline: bool | None = None,
    ) -> None:
        self.db = db
        self.max_batch = max_batch
        self.inline = db.is_sqlite if inline is None else inline
        self._pending: list[_Item] = []
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"overture-{name}", daemon=True)
        self._closed = False
        self.batches = 0
        self.items = 0
        self.retries = 0
        self.failures = 0
        self._conn: Any = None  # the thread's pooled connection
        self._lock_path: Path | None = None
        self._lock_file: Any = None
        if db.is_sqlite:
            database = make_url(db.url).database
            if database and database != ":memory:":
                self._lock_path = Path(database + "-overture-writer")

    def start(self) -> None:
        if not self.inline:
            self._thread.start()

    async def submit(self, handler: Handler, item: Any) -> Any:
        """Write `item` with `handler` in the next batch; its result once committed."""
        if self._closed:
            raise RecorderClosed("the runtime is shutting down; nothing was stored")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if self.inline:
            if not self._pending:
                loop.call_soon(self._flush)  # after every task ready in this turn
            self._pending.append((handler, item, future, loop))
        else:
            self._queue.put((handler, item, future, loop))
        return await future

    def close(self) -> None:
        """Stop accepting, write what is queued, and wait for the thread (blocking; when
        inline, call it on the loop's thread)."""
        if self._closed:
            return
        self._closed = True
        if self.inline:
            self._flush()
            self._close_connection()
            return
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join()

    def _flush(self) -> None:
        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            results, error = self._write(batch)
            for i, (_h, _item, future, _loop) in enumerate(batch):
                if future.done():
                    continue
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(results[i])

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            self._answer(batch, *self._write(batch))
        # drain what arrived after the stop signal (submit raced with close)
        rest: list[_Item] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                rest.append(item)
        if rest:
            self._answer(rest, *self._write(rest))
        self._close_connection()

    def _close_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _write(self, batch: list[_Item]) -> tuple[list[Any], BaseException | None]:
        """Write a batch in one transaction (retried when the database asks to):
        (a result per item, None) or (_, the error that stopped it)."""
        groups: dict[Handler, list[int]] = {}
        for i, (handler, *_rest) in enumerate(batch):
            groups.setdefault(handler, []).append(i)
        results: list[Any] = [None] * len(batch)
        error: BaseException | None = None
        for attempt in range(_RETRIES):
            try:
                with self._writer_lock():
                    self._transaction(groups, batch, results)
                error = None
                break
            except Exception as exc:
                error = exc
                if not _retryable(exc) or attempt == _RETRIES - 1:
                    break
                self.retries += 1
                time.sleep(0.005 * (attempt + 1))
        self.batches += 1
        self.items += len(batch)
        if error is not None:
            self.failures += 1
            log.error("could not write %d items: %s", len(batch), error)
        return results, error

    @staticmethod
    def _answer(batch: list[_Item], results: list[Any], error: BaseException | None) -> None:
        """Wake each waiter (on its loop's thread) with its result or the error."""
        for i, (_h, _item, future, loop) in enumerate(batch):
            if error is not None:
                loop.call_soon_threadsafe(_fail, future, error)
            else:
                loop.call_soon_threadsafe(_resolve, future, results[i])

    def _transaction(
        self, groups: dict[Handler, list[int]], batch: list[_Item], results: list[Any]
    ) -> None:
        if self._conn is None:
            self._conn = self.db.engine.raw_connection()
        conn = self._conn
        driver = conn.driver_connection
        tx = Tx(driver, self.db.is_sqlite)
        try:
            if self.db.is_sqlite:
                tx.execute("BEGIN IMMEDIATE")  # take the write lock now, not on first write
            for handler, indexes in groups.items():
                out = handler(tx, [batch[i][1] for i in indexes])
                for i, r in zip(indexes, out, strict=True):
                    results[i] = r
            driver.commit()
        except BaseException:
            try:
                driver.rollback()
            except Exception:  # the connection is gone: take a new one next time
                with contextlib.suppress(Exception):
                    conn.invalidate()
                self._conn = None
            raise
        finally:
            tx.close()

    @contextlib.contextmanager
    def _writer_lock(self) -> Iterator[None]:
        """Take turns with the other processes writing this SQLite file (see above)."""
        if self._lock_path is None:
            yield
            return
        import fcntl

        if self._lock_file is None:
            self._lock_file = open(self._lock_path, "a")  # noqa: SIM115 (kept open)
        fcntl.flock(self._lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)


def _retryable(exc: BaseException) -> bool:
    code = getattr(exc, "sqlstate", None)
    if code in ("40001", "40P01"):  # serialization failure, deadlock
        return True
    return "database is locked" in str(exc)


def _resolve(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
