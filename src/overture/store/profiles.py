"""Audiences' profile tables: one row per profile, a column per schema field.

An audience names a table of the database (`profile_table`), keyed by the audience's id
field; the table may have more columns (they are not read) or fewer (those fields are
null). List fields are stored as JSON text. The runtime looks profiles up in it
(runtime/profiles.py) and a batch can take it as its population (batch/run.py); both
build the table's description here. `load_rows` fills it, e.g. with the demo's customers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeEngine

from overture.catalog import Audience
from overture.store.database import Database

_TYPES: dict[str, type[TypeEngine[Any]]] = {
    "string": String,
    "int": Integer,
    "float": Float,
    "bool": Boolean,
    "date": Date,
    "datetime": DateTime,
    "list[string]": Text,
}


def table_for(audience: Audience, only: set[str] | None = None) -> Table:
    """The table an audience's profiles are kept in, as `load_rows` creates it (with the
    columns in `only`, when given: those a table made elsewhere has)."""
    assert audience.profile_table is not None
    columns = [
        Column(
            name,
            String(128) if kind.value == "string" else _TYPES[kind.value](),
            primary_key=name == audience.id_field,
        )
        for name, kind in audience.fields.items()
        if only is None or name in only
    ]
    return Table(audience.profile_table, MetaData(), *columns)


def load_rows(db: Database, audience: Audience, rows: Iterable[Mapping[str, Any]]) -> int:
    """Create the audience's profile table if needed and insert `rows` (list fields as
    JSON text). Returns how many rows were written."""
    table = table_for(audience)
    table.create(db.engine, checkfirst=True)
    lists = [n for n, k in audience.fields.items() if k.value == "list[string]"]
    batch: list[dict[str, Any]] = []
    count = 0
    with db.engine.begin() as conn:
        for row in rows:
            item = {k: row.get(k) for k in audience.fields}
            for name in lists:
                value = item[name]
                if value is not None:
                    item[name] = json.dumps(list(value))
            batch.append(item)
            if len(batch) >= 5000:
                conn.execute(table.insert(), batch)
                count += len(batch)
                batch = []
        if batch:
            conn.execute(table.insert(), batch)
            count += len(batch)
    return count


def load_profile(db: Database, audience: Audience, profile_id: str) -> dict[str, Any] | None:
    """One stored profile's attributes (list fields decoded), or None: no such row, or the
    audience keeps no profiles. (The runtime reads the same rows with its own fast, cached
    reader: runtime/profiles.py; this is for the console and the command line.)"""
    if audience.profile_table is None:
        return None
    from sqlalchemy import inspect, select

    names = inspect(db.engine)
    if not names.has_table(audience.profile_table):
        return None
    present = {c["name"] for c in names.get_columns(audience.profile_table)}
    table = table_for(audience, only=present)
    with db.engine.connect() as conn:
        row = (
            conn.execute(select(table).where(table.c[audience.id_field] == profile_id))
            .mappings()
            .first()
        )
    if row is None:
        return None
    out = dict(row)
    for name, kind in audience.fields.items():
        if kind.value == "list[string]" and isinstance(out.get(name), str):
            out[name] = json.loads(out[name])
    return out
