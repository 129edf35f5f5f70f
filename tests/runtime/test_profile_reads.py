"""Profile lookups made at once by concurrent requests find what each would find alone.

On PostgreSQL the reads of one turn of the event loop go in one statement
(runtime/profiles.py); whatever the key column's type, each caller gets the row (or the
error) its own single read would have given."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from overture.catalog import Audience
from overture.runtime.profiles import ProfileSource
from overture.store import Database

FIELDS = {"customer_id": "string", "age": "int", "products": "list[string]"}


def _audience(key_type: str) -> Audience:
    fields = dict(FIELDS)
    if key_type == "int":
        fields["customer_id"] = "int"
    return Audience.model_validate(
        {
            "name": "customer",
            "id_field": "customer_id",
            "profile_table": "people",
            "fields": fields,
        }
    )


def _table(db: Database, key_sql: str, keys: list[str]) -> None:
    with db.engine.begin() as conn:
        conn.execute(
            text(
                f"CREATE TABLE people (customer_id {key_sql} PRIMARY KEY, "
                "age INTEGER, products TEXT)"
            )
        )
        for i, key in enumerate(keys):
            conn.execute(
                text("INSERT INTO people VALUES (:k, :a, :p)"),
                {"k": key, "a": 20 + i, "p": '["card"]' if i % 2 else None},
            )


async def _alone(db: Database, audience: Audience, ids: list[str]) -> list[Any]:
    """What each lookup gives when it is the only one (a source of its own each time)."""
    out: list[Any] = []
    for profile_id in ids:
        source = ProfileSource(db)
        try:
            out.append((await source.lookup(audience, profile_id))[0])
        except Exception as exc:
            out.append(type(exc))
        finally:
            await source.aclose()
    return out


async def _together(db: Database, audience: Audience, ids: list[str]) -> tuple[list[Any], Any]:
    source = ProfileSource(db)
    try:
        found = await asyncio.gather(
            *(source.lookup(audience, i) for i in ids), return_exceptions=True
        )
        return [f if isinstance(f, BaseException) else f[0] for f in found], source._batch
    finally:
        await source.aclose()


def _same(a: list[Any], b: list[Any]) -> None:
    assert [type(x) if isinstance(x, BaseException) else x for x in b] == a


# (an id longer than a 12-character key whose first 12 characters are a key: a cast to the
# column's own length would cut it and find that other profile)
LONG = "ABCDEFGHIJKL"
ASKED = ["C2", "C1", "nobody", "C3", "C1", "c2", "C2 ", "", LONG + "-someone-else", LONG]


@pytest.mark.parametrize("key_sql", ["VARCHAR(128)", "VARCHAR(12)", "CHAR(12)", "TEXT"])
def test_lookups_together_find_what_each_finds_alone(database: Database, key_sql: str) -> None:
    if database.is_sqlite and key_sql == "CHAR(12)":
        pytest.skip("SQLite has no fixed-width text")
    _table(database, key_sql, ["C1", "C2", "C3", LONG])
    audience = _audience("string")
    alone = asyncio.run(_alone(database, audience, ASKED))
    assert (alone[0]["age"], alone[0]["products"], alone[2]) == (21, ["card"], None)
    assert alone[-2] is None and alone[-1] is not None
    together, batch = asyncio.run(_together(database, audience, ASKED))
    _same(alone, together)
    if batch is not None:  # PostgreSQL: one statement for the distinct ids
        assert (batch.round_trips, batch.reads) == (1, len(set(ASKED)))


def test_a_numeric_key_is_compared_as_a_number_not_rounded(database: Database) -> None:
    _table(database, "NUMERIC(6,2)", ["1.01", "2.50"])
    audience = _audience("string")
    asked = ["1.005", "1.01", "2.5", "2.500", "3"]
    alone = asyncio.run(_alone(database, audience, asked))
    together, _batch = asyncio.run(_together(database, audience, asked))
    _same(alone, together)
    assert alone[0] is None and alone[1] is not None


def test_an_id_the_key_refuses_fails_alone(database: Database) -> None:
    """An integer key: a text id fails its own lookup as it would alone (the batched
    statement is refused whole, so the table is then read one id at a time)."""
    _table(database, "INTEGER", ["1", "2", "3"])
    audience = _audience("int")
    asked = ["2", "x", "3", "7"]
    alone = asyncio.run(_alone(database, audience, asked))
    together, _batch = asyncio.run(_together(database, audience, asked))
    _same(alone, together)
    assert together[0] == {"customer_id": 2, "age": 21, "products": ["card"]}
    assert together[3] is None
    # one refused id does not make the table slow for the others: still read together
    source = ProfileSource(database)

    async def twice() -> tuple[list[Any], int]:
        await asyncio.gather(*(source.lookup(audience, i) for i in asked), return_exceptions=True)
        before = source._batch.round_trips if source._batch else 0
        found = await asyncio.gather(*(source.lookup(audience, i) for i in ["1", "4", "5"]))
        after = source._batch.round_trips if source._batch else 0
        await source.aclose()
        return [f[0] for f in found], after - before

    found, statements = asyncio.run(twice())
    assert found == [{"customer_id": 1, "age": 20, "products": None}, None, None]
    if not database.is_sqlite:
        assert statements == 1


def test_reads_stopped_midway_tell_their_callers(database: Database) -> None:
    """A node closing cancels the statement under way: its callers, and those who asked
    meanwhile, are told (cancelled), none is left waiting for ever."""
    if database.is_sqlite:
        pytest.skip("SQLite reads are not batched (they complete without waiting)")
    _table(database, "VARCHAR(128)", ["C1", "C2", "C3"])
    audience = _audience("string")

    async def stopped() -> set[Any]:
        source = ProfileSource(database)
        first = [asyncio.ensure_future(source.lookup(audience, i)) for i in ("C1", "C2")]
        while source._batch is None or source._batch._task is None:
            await asyncio.sleep(0)
        await asyncio.sleep(0)  # the statement is on its way
        later = asyncio.ensure_future(source.lookup(audience, "C3"))
        await asyncio.sleep(0)
        source._batch._task.cancel()
        done, waiting = await asyncio.wait([*first, later], timeout=10)
        await source.aclose()
        assert not waiting, "a caller was left waiting"
        return {type(t.exception()) if not t.cancelled() else "cancelled" for t in done}

    told = asyncio.run(stopped())
    assert told <= {"cancelled", asyncio.CancelledError}, told


def test_a_profile_column_named_like_the_batchs_own_is_read(database: Database) -> None:
    """The batched statement names its own column `overture_id`: a profile table may have
    one too, and it is read as any other column, still in one statement."""
    with database.engine.begin() as conn:
        conn.execute(
            text("CREATE TABLE people (customer_id VARCHAR(20) PRIMARY KEY, overture_id TEXT)")
        )
        conn.execute(text("INSERT INTO people VALUES ('C1', 'mine'), ('C2', 'yours')"))
    audience = Audience.model_validate(
        {
            "name": "customer",
            "id_field": "customer_id",
            "profile_table": "people",
            "fields": {"customer_id": "string", "overture_id": "string"},
        }
    )
    together, batch = asyncio.run(_together(database, audience, ["C2", "C1", "C3"]))
    assert together == [
        {"customer_id": "C2", "overture_id": "yours"},
        {"customer_id": "C1", "overture_id": "mine"},
        None,
    ]
    if batch is not None:
        assert batch.round_trips == 1
