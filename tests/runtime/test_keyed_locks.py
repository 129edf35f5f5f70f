"""The runtime's per-profile mutual exclusion: one holder per key, the others in turn,
a cancelled waiter never keeps the key, and a key nobody holds is forgotten."""

from __future__ import annotations

import asyncio

from overture.runtime.service import _KeyedLocks

KEY = ("staging", "customer", "C1")


def test_holders_take_turns_in_order_and_the_key_is_forgotten() -> None:
    async def main() -> list[str]:
        locks, log = _KeyedLocks(), []

        async def hold(name: str) -> None:
            await locks.acquire(KEY)
            try:
                log.append(f"{name} in")
                await asyncio.sleep(0.001)
                log.append(f"{name} out")
            finally:
                locks.release(KEY)

        await asyncio.gather(*(hold(n) for n in "abc"))
        assert locks._waiting == {}
        return log

    assert asyncio.run(main()) == ["a in", "a out", "b in", "b out", "c in", "c out"]


def test_a_cancelled_waiter_does_not_keep_the_key() -> None:
    async def main() -> None:
        locks = _KeyedLocks()
        await locks.acquire(KEY)
        waiter = asyncio.ensure_future(locks.acquire(KEY))
        third = asyncio.ensure_future(locks.acquire(KEY))
        await asyncio.sleep(0)
        waiter.cancel()
        locks.release(KEY)  # passes over the cancelled waiter to the third
        await asyncio.wait_for(third, 1)
        assert waiter.cancelled()
        locks.release(KEY)
        assert locks._waiting == {}

    asyncio.run(main())


def test_a_waiter_cancelled_just_as_it_is_handed_the_key_passes_it_on() -> None:
    async def main() -> None:
        locks = _KeyedLocks()
        await locks.acquire(KEY)
        waiter = asyncio.ensure_future(locks.acquire(KEY))
        third = asyncio.ensure_future(locks.acquire(KEY))
        await asyncio.sleep(0)
        locks.release(KEY)  # hands the key to `waiter`...
        waiter.cancel()  # ...which is cancelled before it runs
        await asyncio.wait_for(third, 1)  # and the third gets it
        locks.release(KEY)
        assert locks._waiting == {}

    asyncio.run(main())
