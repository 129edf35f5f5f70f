"""The calls of one turn of the event loop, handled together.

A node's hot reads pay a round trip's worth of Python per call (a connection, a write, a
wake-up for the answer) whatever they ask: the Redis script calls (history/redis_batch.py)
and PostgreSQL's profile reads (runtime/profiles.py) of concurrent requests therefore go
together. The first call of a turn starts a task, which runs once every task ready in that
turn has added its own call, and hands them all to `_handle`; what arrives while it is
handled forms the next batch. Nothing waits for a batch to fill. Each caller gets its own
answer or error; if the batch is cancelled (the loop closing), every caller still waiting
is told, none is left waiting for ever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Generic, TypeVar

T = TypeVar("T")  # what a caller asks
R = TypeVar("R")  # what it is answered


class TurnBatch(Generic[T, R]):
    def __init__(self) -> None:
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None

    async def _call(self, item: T) -> R:
        """`item`'s answer, handled with the other calls of this turn of the loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if self._task is None:
            self._task = loop.create_task(self._drain())
        return await future

    async def _handle(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        """Answer (or fail) each call's future."""
        raise NotImplementedError

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await self._handle(batch)
                except Exception as exc:  # the handler's fault: its batch fails, not the next
                    settle((f for _item, f in batch), exc)
                except BaseException as exc:  # cancelled (the loop closing): all are told
                    rest, self._pending = self._pending, []
                    settle((f for _item, f in (*batch, *rest)), exc)
                    raise
        finally:
            self._task = None


def settle(futures: Iterable[asyncio.Future[Any]], exc: BaseException) -> None:
    """Every future not yet answered fails with `exc`."""
    for future in futures:
        if not future.done():
            future.set_exception(exc)
