"""The recorder's group commit: many waiters, one transaction, each told its own outcome."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from pathlib import Path
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


def test_a_write_lock_held_elsewhere_does_not_stall_the_loop(tmp_path: Path) -> None:
    """Another connection (a deployment, the design API) holds SQLite's write lock for a
    while: the recorder waits for it without blocking the event loop, which keeps
    running other tasks, and writes once the lock is free. (SQLite's file lock only:
    PostgreSQL locks rows and waits in the server.)"""
    path = tmp_path / "locked.db"
    database = Database(f"sqlite:///{path}")
    database.upgrade()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # the write lock, held

    async def main() -> tuple[str | None, int]:
        recorder = Recorder(database)
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        ticker = asyncio.create_task(tick())
        write = asyncio.create_task(recorder.submit(_insert, "LATE"))
        await asyncio.sleep(0.3)
        assert not write.done()  # still waiting for the lock...
        seen = ticks  # ...while the loop went on
        other.execute("COMMIT")
        result = await asyncio.wait_for(write, 5)
        ticker.cancel()
        await recorder.aclose()
        return result, seen

    try:
        result, ticks = asyncio.run(main())
    finally:
        other.close()
    assert result == "LATE"
    assert ticks >= 20  # a blocked loop would have ticked once or twice in 0.3 s
    assert _stored(database) == {"LATE"}


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_postgres_batch_inserts_refuse_a_value_too_long_as_a_row_insert_does(
    database: Database,
) -> None:
    """A batch goes to PostgreSQL as arrays; a cast to the column's VARCHAR(n) would cut a
    longer value short in silence (found by a review: event ids past 128 characters all
    became one), so the arrays are cast to the base type and the column refuses it."""
    import psycopg

    from overture.history import tables as t
    from overture.store.raw import pg_connect

    now = dt.datetime(2026, 12, 6, 12)
    row = (
        "code-1", "staging", 1, "customer", "C1", None, "hero", "web", "X" * 65,
        "cards", "", 1, 1.0, 1.0, False, now,
    )  # fmt: skip

    async def main() -> None:
        conn = await pg_connect(database, autocommit=False)
        try:
            async with conn.cursor() as cursor:
                tx = Tx(cursor, sqlite=False)
                with pytest.raises(psycopg.errors.StringDataRightTruncation):
                    await tx.insert_many(t.INSERT_PROPOSITION, t.INSERT_PROPOSITIONS_PG, [row])
            await conn.rollback()
        finally:
            await conn.close()

    asyncio.run(main())
