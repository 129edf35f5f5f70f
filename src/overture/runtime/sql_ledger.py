"""The ledger in the database: counts read from the history tables, claims checked in the
transaction that records the propositions (see ledger.py for the protocol).

Claims are checked with single-row conditional statements, so they are exact whichever
node runs them: `UPDATE profile_versions SET version = version + 1 WHERE version = :seen`
touches no row when another node got there first, and `UPDATE inventory_counters SET
used = used + 1 WHERE used < :limit` none when the inventory is spent. A claim that fails
part-way undoes its own increments before the transaction commits (it still holds the row
locks, so nobody saw them).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from overture.runtime.ledger import (
    Claim,
    ClaimResult,
    Entry,
    EventRecord,
    ProfileHistory,
)
from overture.runtime.plans import LivePlan
from overture.runtime.raw import RawReader, as_time
from overture.runtime.recorder import Recorder
from overture.store import Database
from overture.store.history import (
    EventRow,
    InventoryCounterRow,
    ProfileVersionRow,
    PropositionRow,
)

P = cast(Table, PropositionRow.__table__)
E = cast(Table, EventRow.__table__)
V = cast(Table, ProfileVersionRow.__table__)
INV = cast(Table, InventoryCounterRow.__table__)

# The hot reads, through the driver (raw.py)
_VERSION = (
    "SELECT version FROM profile_versions WHERE environment = ? AND audience = ? AND profile_id = ?"
)
_PRESENTED = (
    "SELECT offer_code, categories, channel, decided_at FROM propositions "
    "WHERE environment = ? AND profile_id = ? AND decided_at >= ? AND audience = ?"
)
_COUNTED = (
    "SELECT kind, offer_code, categories, channel, at FROM events "
    "WHERE environment = ? AND profile_id = ? AND counted AND audience = ?"
)


class SqlLedger:
    def __init__(self, db: Database, recorder: Recorder, readers: ThreadPoolExecutor) -> None:
        self.db = db
        self.recorder = recorder
        self._dialect_insert = sqlite.insert if db.is_sqlite else postgresql.insert
        self._readers = readers
        self.raw = RawReader(db)

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        self.raw.close()

    # -- reads ---------------------------------------------------------------------------
    async def load(self, live: LivePlan, audience: str, profile_id: str) -> ProfileHistory:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._readers, self._load, live, audience, profile_id, _utcnow()
        )

    def _load(
        self, live: LivePlan, audience: str, profile_id: str, now: dt.datetime
    ) -> ProfileHistory:
        env, raw = live.environment, self.raw
        entries: list[Entry] = []
        found = raw.rows(_VERSION, (env, audience, profile_id))
        if live.presented_window is not None:
            since = raw.time(now - live.presented_window)
            for code, categories, channel, at in raw.rows(
                _PRESENTED, (env, profile_id, since, audience)
            ):
                entries.append(Entry("presented", code, _split(categories), channel, as_time(at)))
        if live.presented_window is not None or live.responses_ever or live.responses_window:
            if live.responses_ever:
                rows = raw.rows(_COUNTED, (env, profile_id, audience))
            else:
                windows = [w for w in (live.presented_window, live.responses_window) if w]
                rows = raw.rows(
                    _COUNTED + " AND at >= ?",
                    (env, profile_id, audience, raw.time(now - max(windows))),
                )
            for kind, code, categories, channel, at in rows:
                entries.append(
                    Entry(kind, code or "", _split(categories), channel or "", as_time(at))
                )
        return ProfileHistory.of(found[0][0] if found else 0, entries)

    async def propositions(self, tracking_codes: list[str]) -> dict[str, dict[str, Any]]:
        if not tracking_codes:
            return {}
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._propositions, tracking_codes)

    def _propositions(self, codes: list[str]) -> dict[str, dict[str, Any]]:
        with self.db.engine.connect() as conn:
            rows = conn.execute(select(P).where(P.c.tracking_code.in_(codes))).mappings()
            return {row["tracking_code"]: dict(row) for row in rows}

    # -- writes --------------------------------------------------------------------------
    async def claim(self, claim: Claim) -> ClaimResult:
        result: ClaimResult = await self.recorder.submit(self._claims, claim)
        return result

    def _claims(self, conn: Connection, claims: list[Claim]) -> list[ClaimResult]:
        results = [self._claim(conn, c) for c in claims]
        rows = [row for c, r in zip(claims, results, strict=True) if r.ok for row in c.propositions]
        if rows:
            conn.execute(insert(P), rows)
        return results

    def _claim(self, conn: Connection, claim: Claim) -> ClaimResult:
        env = claim.environment
        taken: list[tuple[str, str]] = []
        for inv in claim.inventory:
            where = and_(
                INV.c.environment == env,
                INV.c.offer_code == inv.offer_code,
                INV.c.period == inv.period,
            )
            done = conn.execute(
                update(INV).where(where, INV.c.used < inv.limit).values(used=INV.c.used + 1)
            ).rowcount
            if not done:
                done = _inserted(
                    conn,
                    self._dialect_insert(INV)
                    .values(environment=env, offer_code=inv.offer_code, period=inv.period, used=1)
                    .on_conflict_do_nothing()
                    .returning(INV.c.used),
                )
            if not done:
                used = conn.scalar(select(INV.c.used).where(where)) or inv.limit
                self._undo(conn, env, taken)
                return ClaimResult(False, exhausted=[(inv.offer_code, inv.period, used)])
            taken.append((inv.offer_code, inv.period))
        if claim.expected is None or claim.profile_id is None:
            return ClaimResult(True)
        key = and_(
            V.c.environment == env,
            V.c.audience == claim.audience,
            V.c.profile_id == claim.profile_id,
        )
        if claim.expected == 0:
            done = _inserted(
                conn,
                self._dialect_insert(V)
                .values(
                    environment=env, audience=claim.audience, profile_id=claim.profile_id, version=1
                )
                .on_conflict_do_nothing()
                .returning(V.c.version),
            )
        else:
            done = conn.execute(
                update(V).where(key, V.c.version == claim.expected).values(version=V.c.version + 1)
            ).rowcount
        if not done:
            self._undo(conn, env, taken)
            return ClaimResult(False, conflict=True)
        return ClaimResult(True, version=claim.expected + 1)

    def _undo(self, conn: Connection, env: str, taken: list[tuple[str, str]]) -> None:
        for offer, period in taken:
            conn.execute(
                update(INV)
                .where(INV.c.environment == env, INV.c.offer_code == offer, INV.c.period == period)
                .values(used=INV.c.used - 1)
            )

    async def record_events(self, environment: str, events: list[EventRecord]) -> list[bool]:
        stored: list[bool] = await self.recorder.submit(self._events, events)
        return stored

    def _events(self, conn: Connection, batches: list[list[EventRecord]]) -> list[list[bool]]:
        rows = [e.row for batch in batches for e in batch]
        inserted: set[tuple[str, str]] = set()
        if rows:
            stmt = (
                self._dialect_insert(E)
                .on_conflict_do_nothing(index_elements=["environment", "event_id"])
                .returning(E.c.environment, E.c.event_id)
            )
            inserted = {(r[0], r[1]) for r in conn.execute(stmt, rows)}
        bumps: set[tuple[str, str, str]] = set()
        out: list[list[bool]] = []
        for batch in batches:
            flags = []
            for e in batch:
                key = (e.row["environment"], e.row["event_id"])
                new = key in inserted
                inserted.discard(key)  # a repeated id within the batch is a duplicate
                flags.append(new)
                if new and e.entry is not None and e.row["profile_id"] is not None:
                    bumps.add((e.row["environment"], e.row["audience"], e.row["profile_id"]))
            out.append(flags)
        for env, audience, profile_id in sorted(bumps):
            upsert = self._dialect_insert(V).values(
                environment=env, audience=audience, profile_id=profile_id, version=1
            )
            conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=["environment", "audience", "profile_id"],
                    set_={"version": V.c.version + 1},
                )
            )
        return out


def _inserted(conn: Connection, statement: Any) -> int:
    """1 if the INSERT ... ON CONFLICT DO NOTHING inserted its row, else 0 (psycopg reports
    rowcount -1 for it, so RETURNING tells)."""
    return 1 if conn.execute(statement).first() is not None else 0


def _split(categories: str | None) -> tuple[str, ...]:
    return tuple(categories.split()) if categories else ()


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
