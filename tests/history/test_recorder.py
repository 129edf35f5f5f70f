"""The recorder's group commit: many waiters, one transaction, each told its own outcome."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from overture.history.recorder import Recorder
from overture.store import Database
from overture.store.raw import Tx

_INSERT = (
    "INSERT INTO inventory_counters (environment, offer_code, period, used) VALUES (?, ?, ?, ?)"
)


async def _insert(tx: Tx, offers: list[str | None]) -> list[str | None]:
    for offer in offers:
        await tx.execute(_INSERT, ("recorder-test", offer, "total", 1))
    return offers


def _stored(db: Database) -> set[str]:
    with db.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT offer_code FROM inventory_counters WHERE environment = 'recorder-test'"
        )
        return {r[0] for r in rows}


def test_concurrent_writes_share_transactions_and_all_commit(database: Database) -> None:
    async def main() -> Recorder:
        recorder = Recorder(database)
        results = await asyncio.gather(*(recorder.submit(_insert, f"O{i}") for i in range(200)))
        assert results == [f"O{i}" for i in range(200)]
        await recorder.aclose()
        return recorder

    recorder = asyncio.run(main())
    assert _stored(database) == {f"O{i}" for i in range(200)}
    assert recorder.batches < 20  # grouped, not one transaction per write


def test_an_item_the_database_refuses_fails_alone(database: Database) -> None:
    """A NOT NULL violation in one waiter's write: its neighbours in the batch are stored
    and answered; only it gets the error."""

    async def main() -> list[Any]:
        recorder = Recorder(database)
        offers: list[str | None] = [f"O{i}" for i in range(20)]
        offers[7] = None
        outcomes = await asyncio.gather(
            *(recorder.submit(_insert, o) for o in offers), return_exceptions=True
        )
        await recorder.aclose()
        return outcomes

    outcomes = asyncio.run(main())
    failed = [i for i, o in enumerate(outcomes) if isinstance(o, Exception)]
    assert failed == [7]
    assert _stored(database) == {f"O{i}" for i in range(20) if i != 7}


def test_a_closed_recorder_refuses_and_loses_nothing_accepted(database: Database) -> None:
    from overture.history.recorder import RecorderClosed

    async def main() -> None:
        recorder = Recorder(database)
        pending = [asyncio.ensure_future(recorder.submit(_insert, f"P{i}")) for i in range(5)]
        await asyncio.sleep(0)  # submitted, not yet written
        await recorder.aclose()
        assert [p.result() for p in pending] == [f"P{i}" for i in range(5)]
        with pytest.raises(RecorderClosed):
            await recorder.submit(_insert, "late")

    asyncio.run(main())
    assert _stored(database) == {f"P{i}" for i in range(5)}
