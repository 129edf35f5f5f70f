"""Profiles looked up by id in the audience's profile table (store/profiles.py).

Rows are cached for a few seconds (bounded): a touchpoint asking for several placements
one after the other reads the profile once, and an update reaches decisions within the
cache's lifetime. When the database does not answer, a row the node read before is used
however old it is (the decision says so: docs/runtime.md, "Failures"); without one, the
request is answered 503.

On PostgreSQL the rows that concurrent requests look up during one turn of the event loop
are read with one statement (the ids joined to the table), as Redis calls are
(history/redis_batch.py): a read through psycopg's asyncio connection costs ~45 µs of
Python whatever it returns, and on the benchmark's load half the decisions read a profile.
Each id is compared as the single read compares its parameter: cast to the key column's
type without its length or precision (a cast to `varchar(12)` or `numeric(6,2)` would cut
or round the id, and find another profile's row). A batch the database refuses is read
again one id at a time, so each caller gets what its own read gets; a table whose key
type the ids cannot be compared with at all is read one id at a time from then on.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from typing import Any, NamedTuple

from sqlalchemy import inspect, text

from overture.catalog import Audience
from overture.history.failures import DatabaseDown, DependencyState, database_down
from overture.store import Database
from overture.store.raw import Reader
from overture.store.turns import TurnBatch, settle


class ProfileTableError(LookupError):
    """The audience's profile table is missing or cannot be read."""


class ProfileSource:
    def __init__(
        self,
        db: Database,
        ttl_seconds: float = 5.0,
        max_cached: int = 50_000,
        state: DependencyState | None = None,
    ) -> None:
        self.db = db
        self.state = state or DependencyState("database")
        self.ttl = ttl_seconds
        self.max_cached = max_cached
        self._cache: OrderedDict[tuple[str, str], tuple[float, dict[str, Any] | None]] = (
            OrderedDict()
        )
        self._queries: dict[tuple[str, tuple[str, ...]], _Query] = {}
        self.raw = Reader(db)
        self._batch = _Batch(self.raw) if not self.raw.sqlite else None

    async def aclose(self) -> None:
        await self.raw.aclose()

    async def load(self, audience: Audience, profile_id: str) -> dict[str, Any] | None:
        """The profile's attributes, or None when the table has no such row."""
        return (await self.lookup(audience, profile_id))[0]

    async def lookup(
        self, audience: Audience, profile_id: str
    ) -> tuple[dict[str, Any] | None, float | None]:
        """The profile's attributes (None: no such row), and None, or, when the database
        does not answer and the node read the row before, that row and its age (s)."""
        assert audience.profile_table is not None
        key = (audience.profile_table, profile_id)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1], None
        try:
            if not self.state.up and not self.state.may_try():
                raise DatabaseDown("known down")
            row = await self._read(audience, profile_id)
        except Exception as exc:
            if not database_down(exc):
                raise
            if not isinstance(exc, DatabaseDown):
                self.state.failed(exc)
            if hit is not None:
                return hit[1], now - hit[0]
            raise DatabaseDown(
                "the database is not answering, so the profile cannot be read; retry in a "
                "few seconds"
            ) from exc
        self.state.answered()
        self._cache[key] = (now, row)
        self._cache.move_to_end(key)
        while len(self._cache) > self.max_cached:
            self._cache.popitem(last=False)
        return row, None

    def _query(self, audience: Audience) -> _Query:
        """The statements that read the audience's table, checked once."""
        assert audience.profile_table is not None
        key = (audience.profile_table, tuple(audience.fields))
        known = self._queries.get(key)
        if known is None:
            table, id_field = audience.profile_table, audience.id_field
            present = inspect(self.db.engine)
            if not present.has_table(table):
                raise ProfileTableError(
                    f"audience {audience.name!r} looks profiles up in table "
                    f"{table!r}, which the runtime database does not have; "
                    "create it or send the profile inline"
                )
            columns = {c["name"] for c in present.get_columns(table)}
            if id_field not in columns:
                raise ProfileTableError(
                    f"table {table!r} has no column {id_field!r} "
                    f"(the id field of audience {audience.name!r})"
                )
            names = [n for n in audience.fields if n in columns]
            lists = [n for n in names if audience.fields[n].value == "list[string]"]
            # identifiers only (the catalog's Identifier pattern), quoted
            read = ", ".join(f'"{n}"' for n in names)
            one = f'SELECT {read} FROM "{table}" WHERE "{id_field}" = ?'
            many = None
            if not self.raw.sqlite:
                # each id asked for, cast to the key's type as the single read's parameter
                # is (without the column's length: see the module's doc), and each row
                # comes back with the id it was asked for
                with self.db.engine.connect() as conn:
                    key_type = conn.execute(_KEY_TYPE, {"t": f'"{table}"', "c": id_field})
                    found = key_type.scalar()
                if found is not None:
                    columns_of_table = ", ".join(f'"{table}"."{n}"' for n in names)
                    many = (
                        f"SELECT {columns_of_table}, asked.overture_id FROM unnest(?::text[]) "
                        f'AS asked(overture_id) JOIN "{table}" '
                        f'ON "{table}"."{id_field}" = asked.overture_id::{found}'
                    )
            known = self._queries[key] = _Query(one, many, names, lists)
        return known

    async def _read(self, audience: Audience, profile_id: str) -> dict[str, Any] | None:
        query = self._query(audience)
        if self._batch is not None and query.many is not None:
            found = await self._batch.read(query.one, query.many, profile_id)
        else:
            rows = await self.raw.rows(query.one, (profile_id,))
            found = rows[0] if rows else None
        if found is None:
            return None
        out = dict(zip(query.names, found, strict=True))
        for name in query.lists:
            value = out.get(name)
            if isinstance(value, str):
                try:
                    out[name] = json.loads(value)
                except ValueError:
                    out[name] = None
        return out


class _Query(NamedTuple):
    one: str  # one profile's row by id
    many: str | None  # PostgreSQL: the rows of several ids, each with the id asked for
    names: list[str]  # the columns read
    lists: list[str]  # those holding a list (JSON text)


# The key column's type by its qualified name, without the column's length or precision
# (its typmod): pg_catalog."varchar", pg_catalog.bpchar, pg_catalog.numeric, a domain.
_KEY_TYPE = text(
    "SELECT quote_ident(n.nspname) || '.' || quote_ident(t.typname) FROM pg_attribute a "
    "JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace n ON n.oid = t.typnamespace "
    "WHERE a.attrelid = to_regclass(:t) AND a.attname = :c AND NOT a.attisdropped"
)
# SQLSTATEs of a key type the ids cannot be compared with at all (no operator, no cast)
_NO_COMPARISON = ("42883", "42846")


_Row = tuple[Any, ...]


_Read = tuple[str, str, str]  # the single read's statement, the batched one, the id
_Callers = dict[str, list[asyncio.Future[_Row | None]]]  # by profile id


class _Batch(TurnBatch[_Read, _Row | None]):
    """PostgreSQL: the profile reads of one turn of the loop, one statement per table."""

    def __init__(self, raw: Reader) -> None:
        super().__init__()
        self.raw = raw
        self._one_by_one: set[str] = set()  # tables whose key the ids cannot be compared with
        self.round_trips = 0  # statements sent
        self.reads = 0  # profiles asked for through them

    async def read(self, one: str, many: str, profile_id: str) -> _Row | None:
        """The row `one` (a single read by id) finds for `profile_id`, or None; read with
        the other ids of this turn through `many` (their rows, each with its id)."""
        if one in self._one_by_one:
            return await self._one(one, profile_id)
        return await self._call((one, many, profile_id))

    async def _handle(self, batch: list[tuple[_Read, asyncio.Future[_Row | None]]]) -> None:
        tables: dict[str, tuple[str, _Callers]] = {}
        for (one, many, profile_id), future in batch:
            tables.setdefault(one, (many, {}))[1].setdefault(profile_id, []).append(future)
        await asyncio.gather(*(self._table(one, *what) for one, what in tables.items()))

    async def _table(self, one: str, many: str, callers: _Callers) -> None:
        ids = list(callers)
        try:
            if len(ids) == 1:
                found = {ids[0]: await self._one(one, ids[0])}
            else:
                rows = await self.raw.rows(many, (ids,))
                self.round_trips += 1
                self.reads += len(ids)
                found = {row[-1]: row[:-1] for row in rows}
        except Exception as exc:
            if len(ids) == 1 or database_down(exc):
                # (every one of the reads would fail alike)
                settle((f for futures in callers.values() for f in futures), exc)
                return
            # refused for one id (text where the key is a number, a domain's check): each
            # caller gets what its own read gets; and if the key's type cannot be compared
            # with the ids' text at all, one by one from now on
            if getattr(exc, "sqlstate", None) in _NO_COMPARISON:
                self._one_by_one.add(one)
            await asyncio.gather(*(self._each(one, i, callers[i]) for i in ids))
            return
        for profile_id, futures in callers.items():
            for future in futures:
                if not future.done():
                    future.set_result(found.get(profile_id))

    async def _one(self, one: str, profile_id: str) -> _Row | None:
        rows = await self.raw.rows(one, (profile_id,))
        self.round_trips += 1
        self.reads += 1
        return rows[0] if rows else None

    async def _each(
        self, one: str, profile_id: str, futures: list[asyncio.Future[_Row | None]]
    ) -> None:
        try:
            found = await self._one(one, profile_id)
        except Exception as exc:
            settle(futures, exc)
            return
        for future in futures:
            if not future.done():
                future.set_result(found)
