"""The Redis script calls of one turn of the loop go in one pipeline, each caller getting
its own answer or error (history/redis_batch.py), against a real Redis of the test's own."""

from __future__ import annotations

import asyncio

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from overture.history.redis_batch import ScriptBatch
from overture.history.redis_ledger import redis_client
from tests.private_servers import private_redis

# KEYS[1]: a counter; ARGV[1]: what to add, or 'fail' to raise a script error
_ADD = """
if ARGV[1] == 'fail' then return redis.error_reply('refused: ' .. KEYS[1]) end
return redis.call('INCRBY', KEYS[1], ARGV[1])
"""


def test_concurrent_calls_share_round_trips_and_each_gets_its_own_answer() -> None:
    with private_redis() as server:

        async def main() -> tuple[list[object], ScriptBatch]:
            client = redis_client(server.url)
            script = client.register_script(_ADD)
            batch = ScriptBatch(client)
            # the first calls find no script loaded (a fresh Redis): loaded, called again
            calls = [
                batch.call(script, [f"k{i % 3}"], ["fail" if i == 7 else i]) for i in range(30)
            ]
            results = await asyncio.gather(*calls, return_exceptions=True)
            again = await asyncio.gather(*(batch.call(script, ["k0"], [1]) for _ in range(10)))
            await client.aclose()
            return [*results, *again], batch

        results, batch = asyncio.run(main())
    assert isinstance(results[7], ResponseError) and "refused: k1" in str(results[7])
    # each counter's answers are its running totals, in the order the calls were made
    totals = [0, 0, 0]
    expected: list[object] = []
    for i in range(30):
        if i != 7:
            totals[i % 3] += i
        expected.append(results[7] if i == 7 else totals[i % 3])
    assert results[:30] == expected
    assert results[30:] == [totals[0] + n for n in range(1, 11)]
    assert batch.calls == 40 and batch.round_trips <= 4  # not one per call


def test_a_redis_that_is_gone_fails_every_call_of_the_pipeline() -> None:
    with private_redis() as server:

        async def main() -> list[object]:
            client = redis_client(server.url)
            script = client.register_script(_ADD)
            batch = ScriptBatch(client)
            await batch.call(script, ["k"], [1])
            server.kill()
            results = await asyncio.gather(
                *(batch.call(script, ["k"], [1]) for _ in range(5)), return_exceptions=True
            )
            await client.aclose()
            return results

        results = asyncio.run(main())
    assert len(results) == 5
    assert all(isinstance(r, RedisConnectionError | OSError) for r in results), results


def test_a_claim_sent_again_after_its_answer_was_lost_adds_nothing_twice() -> None:
    """redis-py sends a call (or a whole pipeline) again when the connection breaks, and
    it may break after the script ran: the claim finds its own note and answers -4 with the
    version, instead of counting its inventory and presentations twice (found by a
    review: a claim without a version check added to the inventory again)."""
    import redis

    from overture.history.redis_ledger import _CLAIM

    with private_redis() as server:
        client = redis.Redis.from_url(server.url)
        try:
            claim = client.register_script(_CLAIM)
            client.set("counters", "built")
            keys = ["v", "p", "counters", "notes", "inventory"]
            note = '{"k":"c","t":["t1"]}'
            for mode, expected in (("", [0]), ("0", [1])):
                client.delete("v", "p", "notes", "inventory")
                # mode, 1 inventory, its limit and ttl, now, window, keep, note, a pair
                args: list[str | int | float] = [
                    *(mode, 1, 5, 0, 1000.0, 0, 0, note, 1000.0, "t1|presented|X|web|")
                ]
                assert claim(keys=keys, args=args) == expected
                assert claim(keys=keys, args=args) == [-4, expected[0]]  # sent again
                assert client.get("inventory") == b"1"
                assert client.zcard("notes") == 1
                assert client.zcard("p") == (0 if mode == "" else 1)
        finally:
            client.close()
