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


ASKED = ["C2", "C1", "nobody", "C3", "C1", "c2", "C2 ", ""]


@pytest.mark.parametrize("key_sql", ["VARCHAR(128)", "CHAR(12)", "TEXT"])
def test_lookups_together_find_what_each_finds_alone(database: Database, key_sql: str) -> None:
    if database.is_sqlite and key_sql == "CHAR(12)":
        pytest.skip("SQLite has no fixed-width text")
    _table(database, key_sql, ["C1", "C2", "C3"])
    audience = _audience("string")
    alone = asyncio.run(_alone(database, audience, ASKED))
    assert (alone[0]["age"], alone[0]["products"], alone[2]) == (21, ["card"], None)
    together, batch = asyncio.run(_together(database, audience, ASKED))
    _same(alone, together)
    if batch is not None:  # PostgreSQL: one statement for the seven distinct ids
        assert (batch.round_trips, batch.reads) == (1, len(set(ASKED)))


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
