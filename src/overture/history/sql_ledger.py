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
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import select

from overture.history import tables as t
from overture.history.counted import profile_query
from overture.history.deployed import LivePlan
from overture.history.ledger import (
    Claim,
    ClaimResult,
    Entry,
    EventRecord,
    ProfileHistory,
)
from overture.history.recorder import Recorder
from overture.history.tables import P, split_categories
from overture.store import Database
from overture.store.raw import Reader, Tx, as_time


class SqlLedger:
    def __init__(self, db: Database, recorder: Recorder, readers: ThreadPoolExecutor) -> None:
        self.db = db
        self.recorder = recorder
        self._readers = readers
        self.raw = Reader(db)

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        await self.raw.aclose()

    # -- reads ---------------------------------------------------------------------------
    async def load(
        self, live: LivePlan, audience: str, profile_id: str, now: dt.datetime | None = None
    ) -> ProfileHistory:
        raw = self.raw
        query = profile_query(live.lookback, "sqlite" if raw.sqlite else "postgresql")
        params = query.params(live.environment, audience, profile_id, now or _utcnow(), raw.time)
        version = 0
        entries: list[Entry] = []
        for kind, code, categories, channel, at, found in await raw.rows(query.sql, params):
            if kind == "v":
                version = found
            else:
                entries.append(
                    Entry(
                        kind, code or "", split_categories(categories), channel or "", as_time(at)
                    )
                )
        return ProfileHistory.of(version, entries)

    async def propositions(self, tracking_codes: list[str]) -> dict[str, dict[str, Any]]:
        if not tracking_codes:
            return {}
        if self.raw.sqlite:
            return self._propositions(tracking_codes)
        loop = asyncio.get_running_loop()  # rare (an event posted to another node): a thread
        return await loop.run_in_executor(self._readers, self._propositions, tracking_codes)

    def _propositions(self, codes: list[str]) -> dict[str, dict[str, Any]]:
        with self.db.engine.connect() as conn:
            rows = conn.execute(select(P).where(P.c.tracking_code.in_(codes))).mappings()
            return {row["tracking_code"]: dict(row) for row in rows}

    # -- writes (by the recorder, in its transaction: raw.Tx) -------------------------------
    async def claim(self, claim: Claim) -> ClaimResult:
        result: ClaimResult = await self.recorder.submit(self._claims, claim)
        return result

    async def _claims(self, tx: Tx, claims: list[Claim]) -> list[ClaimResult]:
        results = [await self._claim(tx, c) for c in claims]
        await insert_propositions(
            tx, [c.propositions for c, r in zip(claims, results, strict=True) if r.ok]
        )
        return results

    async def _claim(self, tx: Tx, claim: Claim) -> ClaimResult:
        env = claim.environment
        taken: list[tuple[str, str]] = []
        for inv in claim.inventory:
            key = (env, inv.offer_code, inv.period)
            done = await tx.execute(t.TAKE_INVENTORY, (*key, inv.limit)) == 1
            if not done:
                done = await tx.first(t.FIRST_INVENTORY, key) is not None
            if not done:
                row = await tx.first(t.INVENTORY_USED, key)
                await self._undo(tx, env, taken)
                used = row[0] if row else inv.limit
                return ClaimResult(False, exhausted=[(inv.offer_code, inv.period, used)])
            taken.append((inv.offer_code, inv.period))
        if claim.expected is None or claim.profile_id is None:
            return ClaimResult(True)
        who = (env, claim.audience, claim.profile_id)
        if claim.expected == 0:
            done = await tx.first(t.FIRST_VERSION, who) is not None
        else:
            done = await tx.execute(t.NEXT_VERSION, (*who, claim.expected)) == 1
        if not done:
            await self._undo(tx, env, taken)
            return ClaimResult(False, conflict=True)
        return ClaimResult(True, version=claim.expected + 1)

    async def _undo(self, tx: Tx, env: str, taken: list[tuple[str, str]]) -> None:
        for offer, period in taken:
            await tx.execute(t.ADD_INVENTORY, (-1, env, offer, period))

    async def record_events(self, environment: str, events: list[EventRecord]) -> list[bool]:
        stored: list[bool] = await self.recorder.submit(self._events, events)
        return stored

    async def _events(self, tx: Tx, batches: list[list[EventRecord]]) -> list[list[bool]]:
        rows = [_event_values(tx, e.row) for batch in batches for e in batch]
        flags = iter(await tx.inserted(t.INSERT_EVENT, rows))
        bumps: set[tuple[str, str, str]] = set()
        out: list[list[bool]] = []
        for batch in batches:
            batch_flags = []
            for e in batch:
                new = next(flags)
                batch_flags.append(new)
                if new and e.entry is not None and e.row["profile_id"] is not None:
                    bumps.add((e.row["environment"], e.row["audience"], e.row["profile_id"]))
            out.append(batch_flags)
        for who in sorted(bumps):
            await tx.execute(t.BUMP_VERSION, who)
        return out


async def insert_propositions(tx: Tx, batches: list[list[dict[str, Any]]]) -> None:
    """Record propositions (claimed ones) in one statement for the whole batch."""
    time, sqlite = tx.time, tx.sqlite
    rows = [
        (
            r["tracking_code"],
            r["environment"],
            r["deployment"],
            r["audience"],
            r["profile_id"],
            r["session_id"],
            r["placement"],
            r["channel"],
            r["offer_code"],
            r["categories"],
            r["rank"],
            r["score"],
            r["probability"],
            int(r["fallback"]) if sqlite else r["fallback"],
            time(r["decided_at"]),
        )
        for batch in batches
        for r in batch
    ]
    await tx.executemany(t.INSERT_PROPOSITION, rows)


def _event_values(tx: Tx, row: dict[str, Any]) -> tuple[Any, ...]:
    values = dict(row)
    values["at"] = tx.time(row["at"])
    values["received_at"] = tx.time(row["received_at"])
    values["attributes"] = json.dumps(row["attributes"], separators=(",", ":"))
    if tx.sqlite:
        values["counted"] = int(row["counted"])
    return tuple(values[c] for c in t.EVENT_COLUMNS)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
