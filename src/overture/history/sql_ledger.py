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
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import select

from overture.history import rollups
from overture.history import tables as t
from overture.history.counted import profile_query
from overture.history.deployed import LivePlan
from overture.history.failures import DatabaseDown, database_down
from overture.history.ledger import (
    Claim,
    ClaimResult,
    EventRecord,
    ProfileHistory,
)
from overture.history.recorder import Recorder
from overture.history.tables import P, split_categories
from overture.store import Database
from overture.store.raw import Reader, Tx, as_time

T = TypeVar("T")
READ_FAILED = (
    "the database is not answering, so this request cannot be answered; retry in a few seconds"
)


class SqlLedger:
    def __init__(
        self,
        db: Database,
        recorder: Recorder,
        readers: ThreadPoolExecutor,
        *,
        rollups: bool = True,
    ) -> None:
        self.rollups = rollups  # keep report_daily exact as history is written (rollups.py)
        self.db = db
        self.recorder = recorder
        self._readers = readers
        self.raw = Reader(db)

    async def start(self) -> None:
        pass

    async def upkeep(self, lives: Sequence[LivePlan], *, starting: bool = False) -> None:
        pass  # the counts are the history itself

    def counters(self) -> dict[str, str]:
        return {}

    async def close(self) -> None:
        await self.raw.aclose()

    async def _read(self, read: Callable[[], Awaitable[T]]) -> T:
        """A read, or DatabaseDown when the database does not answer (at once while it is
        known to be down: failures.DependencyState)."""
        state = self.recorder.state
        if not state.up and not state.may_try():
            raise DatabaseDown(READ_FAILED)
        try:
            found = await read()
        except Exception as exc:
            if not database_down(exc):
                raise
            state.failed(exc)
            raise DatabaseDown(READ_FAILED) from exc
        state.answered()
        return found

    # -- reads ---------------------------------------------------------------------------
    async def load(
        self, live: LivePlan, audience: str, profile_id: str, now: dt.datetime | None = None
    ) -> ProfileHistory:
        return await self._read(lambda: self._load(live, audience, profile_id, now))

    async def _load(
        self,
        live: LivePlan,
        audience: str,
        profile_id: str,
        now: dt.datetime | None,
        since: ProfileHistory | None = None,
    ) -> ProfileHistory:
        """The profile's history; with `since`, that one and what was written after it."""
        raw = self.raw
        lookback = live.lookback
        query = profile_query(
            lookback, "sqlite" if raw.sqlite else "postgresql", after=since is not None
        )
        after = since.after if since is not None else (0, 0)
        now = now or _utcnow()
        params = query.params(live.environment, audience, profile_id, now, raw.time, after=after)
        version = 0
        items = []
        last_proposition, last_event = after
        for kind, code, categories, channel, at, number, table in await raw.rows(query.sql, params):
            if kind == "v":
                version = number
                continue
            # ProfileHistory's items, built directly (a cache miss's hot loop)
            items.append(
                (kind, code or "", channel or "", split_categories(categories), as_time(at))
            )
            if table == "p":
                last_proposition = max(last_proposition, number)
            else:
                last_event = max(last_event, number)
        if since is not None:
            if version == since.version:
                return since  # (what it read since is the node's own claims, recorded)
            # what it read before, less what has left the windows since (as a whole read)
            presented = lookback.presented_since(now)
            responses = lookback.responses_since(now)
            kept = [
                item
                for item in since.items[: since.read]
                if (
                    presented is not None and item[4] >= presented
                    if item[0] == "presented"
                    else responses is None or item[4] >= responses
                )
            ]
            items[:0] = kept
        return ProfileHistory(version, tuple(items), (last_proposition, last_event))

    async def refresh(
        self,
        live: LivePlan,
        audience: str,
        profile_id: str,
        cached: ProfileHistory,
        *,
        now: dt.datetime | None = None,
    ) -> ProfileHistory:
        """The version (one small read), and when it moved: on SQLite, only what was written
        since `cached` was read (usually another worker's last claims), where the whole
        history again took most of what a second worker on the file costs (docs/runtime.md,
        "A second worker on one SQLite file"; benchmarks/history_reads.py: a moved profile
        of 8 entries 54 → 46 µs, of 26 entries 107 → 65). It relies on SQLite giving a new
        row an id past every id a reader could have seen (one writer at a time, each id past
        the largest; the history's tables are only ever added to; a database file restored
        under running nodes would break that: restart them). PostgreSQL's sequences hand
        out ids before the commits that make them visible, in any order: there the whole
        history is read again."""
        if await self.version(live.environment, audience, profile_id) == cached.version:
            return cached
        if not self._reads_since():
            return await self.load(live, audience, profile_id, now)
        return await self._read(lambda: self._load(live, audience, profile_id, now, cached))

    def _reads_since(self) -> bool:
        """Whether a moved history is read from where it was left (refresh): on SQLite."""
        return self.raw.sqlite

    async def version(self, environment: str, audience: str, profile_id: str) -> int:
        who = (environment, audience, profile_id)
        rows = await self._read(lambda: self.raw.rows(t.READ_VERSION, who))
        return int(rows[0][0]) if rows else 0

    async def propositions(self, tracking_codes: list[str]) -> dict[str, dict[str, Any]]:
        if not tracking_codes:
            return {}
        return await self._read(lambda: self._propositions_read(tracking_codes))

    async def _propositions_read(self, tracking_codes: list[str]) -> dict[str, dict[str, Any]]:
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
            tx,
            [c.propositions for c, r in zip(claims, results, strict=True) if r.ok],
            rollup=self.rollups,
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
        if claim.profile_id is None:
            return ClaimResult(True)
        who = (env, claim.audience, claim.profile_id)
        if claim.unchecked:  # a degraded decision's: nothing counted proposed, no comparison
            if claim.entries:
                await tx.execute(t.BUMP_VERSION, who)
            return ClaimResult(True)
        if claim.expected is None:
            return ClaimResult(True)
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
        flags = iter(await insert_events(tx, rows))
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
        if self.rollups:
            stored_rows = [
                e.row
                for batch, stored_flags in zip(batches, out, strict=True)
                for e, stored in zip(batch, stored_flags, strict=True)
                if stored
            ]
            rollups.events(stored_rows, rollups.pending(tx))
        return out


async def insert_propositions(
    tx: Tx, batches: list[list[dict[str, Any]]], *, rollup: bool = True
) -> None:
    """Record propositions (claimed ones) in one statement for the whole batch, and what
    they add to the daily rollup in another."""
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
            r.get("segments", ""),
            r["rank"],
            float(r["score"]),  # (PostgreSQL's arrays take one type: an int among floats
            float(r["probability"]),  # fails the batch, found by a review)
            int(r["fallback"]) if sqlite else r["fallback"],
            time(r["decided_at"]),
        )
        for batch in batches
        for r in batch
    ]
    await tx.insert_many(t.INSERT_PROPOSITION, t.INSERT_PROPOSITIONS_PG, rows)
    if rollup and rows:
        rollups.propositions((r for batch in batches for r in batch), rollups.pending(tx))


_EVENTS_PER_STATEMENT = 500  # 18 columns: 9,000 parameters of SQLite's 32,766


async def insert_events(tx: Tx, rows: list[tuple[Any, ...]]) -> list[bool]:
    """Store events (ON CONFLICT DO NOTHING): for each row, whether it was stored now.
    Statements return the (environment, event_id) of the rows they stored: on SQLite a
    multi-row INSERT per 500 events, on PostgreSQL one for them all (arrays, unnest)."""
    env_at, id_at = t.EVENT_COLUMNS.index("environment"), t.EVENT_COLUMNS.index("event_id")
    stored: set[tuple[str, str]] = set()
    if not rows:
        return []
    if not tx.sqlite:
        columns = tuple(list(column) for column in zip(*rows, strict=True))
        stored.update(await tx.rows(t.INSERT_EVENTS_PG, columns))
    else:
        for start in range(0, len(rows), _EVENTS_PER_STATEMENT):
            chunk = rows[start : start + _EVENTS_PER_STATEMENT]
            params = tuple(value for row in chunk for value in row)
            stored.update(await tx.rows(t.insert_events_returning(len(chunk)), params))
    flags = []
    for row in rows:  # the same event twice in one batch: the first one is stored
        key = (row[env_at], row[id_at])
        flags.append(key in stored)
        stored.discard(key)
    return flags


def _event_values(tx: Tx, row: dict[str, Any]) -> tuple[Any, ...]:
    values = dict(row)
    values["at"] = tx.time(row["at"])
    values["received_at"] = tx.time(row["received_at"])
    values["attributes"] = json.dumps(row["attributes"], separators=(",", ":"))
    values.setdefault("segments", "")
    if tx.sqlite:
        values["counted"] = int(row["counted"])
    return tuple(values[c] for c in t.EVENT_COLUMNS)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
