"""The Redis script calls of one turn of the event loop, sent in one pipeline.

Every decision for a profile calls Redis once or twice (its counted history when the node
has none cached, then its claim), and redis-py spends about as much Python on a call as on
the rest of the claim: a connection from the pool and back, a socket write, a wake-up for
the answer. Calls made during one turn of the loop (the concurrent requests' claims) go
instead in one pipeline: one connection, one write, one read, the answers handed back in
order. Each caller still gets its own answer or its own error; a failure of the
connection fails every call of that pipeline, as it would have failed each of them.

It is the recorder's group commit (recorder.py), for Redis: nothing waits for a batch to
fill, the batch is whatever arrived while the previous one was on the wire (store/turns.py,
which PostgreSQL's profile reads use too).
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from overture.store.turns import TurnBatch

_Script = tuple[AsyncScript, list[Any], list[Any]]


class ScriptBatch(TurnBatch[_Script, Any]):
    def __init__(self, redis: Redis) -> None:
        super().__init__()
        self.redis = redis
        self.round_trips = 0  # pipelines sent
        self.calls = 0  # script calls answered through them

    async def call(self, script: AsyncScript, keys: list[Any], args: list[Any]) -> Any:
        """`script(keys, args)`, sent with the other calls of this turn of the loop."""
        return await self._call((script, keys, args))

    async def _handle(self, batch: list[tuple[_Script, asyncio.Future[Any]]]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:  # a failure fails them all
            for (script, keys, args), _future in batch:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            results = await pipe.execute(raise_on_error=False)
        self.round_trips += 1
        self.calls += len(batch)
        for ((script, keys, args), future), answer in zip(batch, results, strict=True):
            if future.done():  # the caller went away
                continue
            result = answer
            if isinstance(answer, NoScriptError):  # Redis lost its scripts: load, call again
                try:
                    result = await script(keys=keys, args=args)
                except Exception as exc:
                    result = exc
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
