"""Profiles looked up by id in the audience's profile table (store/profiles.py).

Rows are cached for a few seconds (bounded): a touchpoint asking for several placements
one after the other reads the profile once, and an update reaches decisions within the
cache's lifetime. When the database does not answer, a row the node read before is used
however old it is (the decision says so: docs/runtime.md, "Failures"); without one, the
request is answered 503.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from typing import Any

from sqlalchemy import inspect

from overture.catalog import Audience
from overture.history.failures import DatabaseDown, DependencyState, database_down
from overture.store import Database
from overture.store.raw import Reader


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
        self._queries: dict[tuple[str, tuple[str, ...]], tuple[str, list[str], list[str]]] = {}
        self.raw = Reader(db)

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

    def _query(self, audience: Audience) -> tuple[str, list[str], list[str]]:
        """(SQL, columns read, list columns) for the audience's table, checked once."""
        assert audience.profile_table is not None
        key = (audience.profile_table, tuple(audience.fields))
        known = self._queries.get(key)
        if known is None:
            present = inspect(self.db.engine)
            if not present.has_table(audience.profile_table):
                raise ProfileTableError(
                    f"audience {audience.name!r} looks profiles up in table "
                    f"{audience.profile_table!r}, which the runtime database does not have; "
                    "create it or send the profile inline"
                )
            columns = {c["name"] for c in present.get_columns(audience.profile_table)}
            if audience.id_field not in columns:
                raise ProfileTableError(
                    f"table {audience.profile_table!r} has no column {audience.id_field!r} "
                    f"(the id field of audience {audience.name!r})"
                )
            names = [n for n in audience.fields if n in columns]
            lists = [n for n in names if audience.fields[n].value == "list[string]"]
            # identifiers only (the catalog's Identifier pattern), quoted
            sql = (
                f"SELECT {', '.join(f'{chr(34)}{n}{chr(34)}' for n in names)} "
                f'FROM "{audience.profile_table}" WHERE "{audience.id_field}" = ?'
            )
            known = self._queries[key] = (sql, names, lists)
        return known

    async def _read(self, audience: Audience, profile_id: str) -> dict[str, Any] | None:
        sql, names, lists = self._query(audience)
        rows = await self.raw.rows(sql, (profile_id,))
        if not rows:
            return None
        out = dict(zip(names, rows[0], strict=True))
        for name in lists:
            value = out.get(name)
            if isinstance(value, str):
                try:
                    out[name] = json.loads(value)
                except ValueError:
                    out[name] = None
        return out
