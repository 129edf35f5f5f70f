"""A batch and the environment's database: the history it reads, the propositions it
writes, and the inventory it holds while it runs.

- Reading: the counted history the runtime reads (propositions as `presented` within the
  longest capping window, counted events within the longest window or ever), for every
  profile at once, streamed into Arrow; the inventory counters as they are.
- Holding inventory: a batch that records takes, before allocating, everything an
  inventory has left (the counter goes to its limit), so a runtime node proposing the
  same offer meanwhile sees it exhausted and the total can never pass the limit; what the
  batch did not give is handed back when it records, or when it fails or is interrupted.
  A batch killed outright leaves the counter high: `overture counters rebuild` recomputes
  it from the history.
- Writing: the propositions in one transaction (PostgreSQL: COPY), every recipient's
  profile version bumped (a node's cached history of them is read again), and the
  inventory counters set to what was really given.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from sqlalchemy import Connection, and_, select, text

from overture.batch.allocate import HISTORY_COLUMNS, inventory_period
from overture.runtime.plans import LivePlan
from overture.runtime.sql_ledger import INV, PROPOSITION_COLUMNS, E, P
from overture.store import Database

_BATCH = 20_000


def read_history(db: Database, live: LivePlan, audience: str, now: dt.datetime) -> pa.Table:
    """The environment's counted history as the runtime would read it at `now`, every
    profile of the audience (columns: allocate.HISTORY_COLUMNS)."""
    columns: dict[str, list[Any]] = {name: [] for name, _type in HISTORY_COLUMNS}

    def add(rows: Iterable[Any], kind: str | None) -> None:
        for row in rows:
            columns["profile_id"].append(row.profile_id)
            columns["event"].append(kind or row.kind)
            columns["offer_code"].append(row.offer_code or "")
            columns["categories"].append(row.categories.split() if row.categories else [])
            columns["channel"].append(row.channel or "")
            columns["at"].append(row.at)

    env = live.environment
    with db.engine.connect() as conn:
        if live.presented_window is not None:
            query = select(
                P.c.profile_id,
                P.c.offer_code,
                P.c.categories,
                P.c.channel,
                P.c.decided_at.label("at"),
            ).where(
                P.c.environment == env,
                P.c.audience == audience,
                P.c.profile_id.is_not(None),
                P.c.decided_at >= now - live.presented_window,
            )
            add(_stream(conn, query), "presented")
        windows = [w for w in (live.presented_window, live.responses_window) if w]
        if windows or live.responses_ever:
            where = [
                E.c.environment == env,
                E.c.audience == audience,
                E.c.counted,
                E.c.profile_id.is_not(None),
            ]
            if not live.responses_ever:
                where.append(E.c.at >= now - max(windows))
            query = select(
                E.c.profile_id, E.c.kind, E.c.offer_code, E.c.categories, E.c.channel, E.c.at
            ).where(and_(*where))
            add(_stream(conn, query), None)
    return pa.table(
        {
            "profile_id": pa.array(columns["profile_id"], pa.string()),
            "event": pa.array(columns["event"], pa.string()),
            "offer_code": pa.array(columns["offer_code"], pa.string()),
            "categories": pa.array(columns["categories"], pa.list_(pa.string())),
            "channel": pa.array(columns["channel"], pa.string()),
            "at": pa.array(columns["at"], pa.timestamp("us")),
        }
    )


def _stream(conn: Connection, query: Any) -> Iterable[Any]:
    result = conn.execution_options(yield_per=_BATCH).execute(query)
    yield from result


def inventory_used(db: Database, environment: str) -> dict[tuple[str, str], int]:
    """Each inventory counter of the environment: (offer, period) -> presentations."""
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(INV.c.offer_code, INV.c.period, INV.c.used).where(
                INV.c.environment == environment
            )
        )
        return {(code, period): used for code, period, used in rows}


@dataclass
class Hold:
    """Inventory a recording batch holds: counter (offer, period) -> presentations taken."""

    environment: str
    used_before: dict[tuple[str, str], int] = field(default_factory=dict)
    taken: dict[tuple[str, str], int] = field(default_factory=dict)


def hold_inventory(db: Database, live: LivePlan, placement: str, now: dt.datetime) -> Hold:
    """Take what each inventory the placement draws on has left, atomically (the
    counters' rows are locked; SQLite: the write lock)."""
    hold = Hold(live.environment)
    limits: dict[str, list[tuple[str, int]]] = {}
    for (where, offer), rules in live.inventory.items():
        if where == placement:
            for rule in rules:
                limits.setdefault(offer, []).append((inventory_period(rule.per, now), rule.limit))
    if not limits:
        return hold
    with db.engine.begin() as conn:
        for offer, counters in sorted(limits.items()):
            used = {}
            for period, _limit in counters:
                conn.execute(
                    text(
                        "INSERT INTO inventory_counters (environment, offer_code, period, used) "
                        "VALUES (:e, :o, :p, 0) ON CONFLICT DO NOTHING"
                    ),
                    {"e": live.environment, "o": offer, "p": period},
                )
                row = conn.execute(
                    select(INV.c.used)
                    .where(
                        INV.c.environment == live.environment,
                        INV.c.offer_code == offer,
                        INV.c.period == period,
                    )
                    .with_for_update()
                ).one()
                used[period] = row.used
            left = max(0, min(limit - used[period] for period, limit in counters))
            for period, _limit in counters:
                hold.used_before[(offer, period)] = used[period]
                hold.taken[(offer, period)] = left
                _add(conn, live.environment, offer, period, left)
    return hold


def release(db: Database, hold: Hold, given: Mapping[str, int] | None = None) -> None:
    """Hand back what the batch held and did not give (all of it when `given` is None)."""
    if not hold.taken:
        return
    with db.engine.begin() as conn:
        _release(conn, hold, given or {})
    hold.taken.clear()


def _release(conn: Connection, hold: Hold, given: Mapping[str, int]) -> None:
    for (offer, period), taken in hold.taken.items():
        back = taken - given.get(offer, 0)
        if back:
            _add(conn, hold.environment, offer, period, -back)


def _add(conn: Connection, environment: str, offer: str, period: str, n: int) -> None:
    conn.execute(
        INV.update()
        .where(
            INV.c.environment == environment,
            INV.c.offer_code == offer,
            INV.c.period == period,
        )
        .values(used=INV.c.used + n)
    )


def record(
    db: Database,
    live: LivePlan,
    batches: Iterable[pa.RecordBatch],
    *,
    placement: str,
    audience: str,
    now: dt.datetime,
    hold: Hold,
) -> tuple[int, dict[str, int]]:
    """Write a run's propositions (batches of the output table) in one transaction, bump
    the recipients' versions and settle the held inventory. Returns (rows, per offer)."""
    channel = live.plan.placements[placement].channel
    categories = {code: " ".join(chain) for code, chain in live.offer_categories.items()}
    given: dict[str, int] = {}
    recipients: set[str] = set()
    total = 0
    postgres = db.engine.dialect.name == "postgresql"
    with db.engine.begin() as conn:
        for batch in batches:
            data = batch.to_pydict()
            rows = []
            for code, who, offer, rank, score, fallback in zip(
                data["tracking_code"],
                data["recipient"],
                data["offer"],
                data["rank"],
                data["score"],
                data["fallback"],
                strict=True,
            ):
                rows.append(
                    (
                        code,
                        live.environment,
                        live.deployment,
                        audience,
                        who,
                        None,
                        placement,
                        channel,
                        offer,
                        categories.get(offer, ""),
                        rank,
                        score,
                        1.0,
                        bool(fallback),
                        now,
                    )
                )
                given[offer] = given.get(offer, 0) + 1
                recipients.add(who)
            total += len(rows)
            _insert(conn, rows, postgres)
        bump = text(
            "INSERT INTO profile_versions (environment, audience, profile_id, version) "
            "VALUES (:e, :a, :p, 1) ON CONFLICT (environment, audience, profile_id) "
            "DO UPDATE SET version = profile_versions.version + 1"
        )
        ordered = sorted(recipients)
        for start in range(0, len(ordered), _BATCH):
            conn.execute(
                bump,
                [
                    {"e": live.environment, "a": audience, "p": p}
                    for p in ordered[start : start + _BATCH]
                ],
            )
        _release(conn, hold, given)
    hold.taken.clear()
    return total, given


def _insert(conn: Connection, rows: list[tuple[Any, ...]], postgres: bool) -> None:
    if not rows:
        return
    if postgres:  # COPY: an order of magnitude faster than INSERTs for millions of rows
        raw = conn.connection.driver_connection
        assert raw is not None
        with (
            raw.cursor() as cur,
            cur.copy(f"COPY propositions ({', '.join(PROPOSITION_COLUMNS)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join(f":{c}" for c in PROPOSITION_COLUMNS)
    conn.execute(
        text(f"INSERT INTO propositions ({', '.join(PROPOSITION_COLUMNS)}) VALUES ({marks})"),
        [dict(zip(PROPOSITION_COLUMNS, row, strict=True)) for row in rows],
    )
