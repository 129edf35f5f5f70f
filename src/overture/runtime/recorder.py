"""Group commit: many requests' writes in one database transaction.

Each decision and each event batch hands its write to the recorder and waits; one thread
takes whatever has queued (up to `max_batch` items) and writes it all in one transaction,
then wakes every waiter with its own result. A request is answered only once its write is
committed, so an acknowledged event or proposition survives the process being killed;
the cost of a commit is shared by every request that arrived while the previous one ran,
which is what lets a single SQLite file keep up with thousands of requests a second.

On shutdown the queue is drained before the thread stops: nothing accepted is dropped.
A transaction that fails on a deadlock or serialization error (PostgreSQL, two nodes
locking rows in different orders) is retried whole; any other failure is reported to
every waiter of the batch, who tell their callers that nothing was stored.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from overture.store import Database

log = logging.getLogger("overture.runtime")

# Runs in the recorder's thread, inside the transaction: one result per item, in order.
Handler = Callable[[Connection, list[Any]], list[Any]]
_Item = tuple[Handler, Any, asyncio.Future[Any], asyncio.AbstractEventLoop]
_RETRIES = 5


class RecorderClosed(RuntimeError):
    pass


class Recorder:
    def __init__(self, db: Database, *, max_batch: int = 2000, name: str = "recorder") -> None:
        self.db = db
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"overture-{name}", daemon=True)
        self._closed = False
        self.batches = 0
        self.items = 0
        self.retries = 0
        self.failures = 0

    def start(self) -> None:
        self._thread.start()

    async def submit(self, handler: Handler, item: Any) -> Any:
        """Write `item` with `handler` in the next batch; its result once committed."""
        if self._closed:
            raise RecorderClosed("the runtime is shutting down; nothing was stored")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put((handler, item, future, loop))
        return await future

    def close(self) -> None:
        """Stop accepting, write what is queued, and wait for the thread (blocking)."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join()

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
            self._write(batch)
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
            self._write(rest)

    def _write(self, batch: list[_Item]) -> None:
        groups: dict[Handler, list[int]] = {}
        for i, (handler, *_rest) in enumerate(batch):
            groups.setdefault(handler, []).append(i)
        results: list[Any] = [None] * len(batch)
        error: BaseException | None = None
        for attempt in range(_RETRIES):
            try:
                with self.db.engine.begin() as conn:
                    for handler, indexes in groups.items():
                        out = handler(conn, [batch[i][1] for i in indexes])
                        for i, r in zip(indexes, out, strict=True):
                            results[i] = r
                error = None
                break
            except DBAPIError as exc:
                error = exc
                if not _retryable(exc) or attempt == _RETRIES - 1:
                    break
                self.retries += 1
                time.sleep(0.005 * (attempt + 1))
            except Exception as exc:
                error = exc
                break
        self.batches += 1
        self.items += len(batch)
        if error is not None:
            self.failures += 1
            log.error("could not write %d items: %s", len(batch), error)
        for i, (_h, _item, future, loop) in enumerate(batch):
            if error is not None:
                loop.call_soon_threadsafe(_fail, future, error)
            else:
                loop.call_soon_threadsafe(_resolve, future, results[i])


def _retryable(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    if code in ("40001", "40P01"):  # serialization failure, deadlock
        return True
    return "database is locked" in str(exc.orig)


def _resolve(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
