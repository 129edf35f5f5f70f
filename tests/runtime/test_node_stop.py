"""A node stops when told, whenever it is told: its background tasks (the dependency
probe, the deployment watch) end on the first request, wherever they are.

The probe once checked the database with `asyncio.wait_for`, which in Python 3.11 swallows
a cancellation that arrives just as the awaited read completes: the probe's loop then went
on probing, and the node's shutdown waited for it for ever (found by a benchmark whose
node never stopped). The stops below land at every point of the probe's cycle."""

from __future__ import annotations

import asyncio

from overture.runtime import RuntimeNode, RuntimeSettings
from tests.deployed import Deployed


def test_a_node_stops_wherever_its_probe_is(shop: Deployed) -> None:
    async def start_and_stop(turns: int) -> bool:
        # probing back to back, so that the stop lands somewhere in a probe
        node = RuntimeNode(RuntimeSettings(probe_seconds=0.0, poll_seconds=0.0), db=shop.db)
        await node.start()
        for _ in range(turns):
            await asyncio.sleep(0)  # one turn of the event loop each
        stop = asyncio.ensure_future(node.stop())
        done, _ = await asyncio.wait([stop], timeout=10)  # (wait: it does not cancel)
        return bool(done)

    async def every_turn() -> int | None:
        for turns in range(30):
            if not await start_and_stop(turns):
                return turns
        return None

    # (a loop of its own, closed without cancelling what is left: a node that does not
    # stop would not stop for asyncio.run's clean-up either, and the test would hang)
    loop = asyncio.new_event_loop()
    try:
        hung = loop.run_until_complete(every_turn())
    finally:
        loop.close()
    assert hung is None, f"the node did not stop within 10 s (stopped after {hung} turns)"
