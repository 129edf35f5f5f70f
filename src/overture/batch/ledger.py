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
from sqlalchemy import Connection, select

from overture.batch.policies import HISTORY_COLUMNS
from overture.history import rollups
from overture.history import tables as t
from overture.history.counted import every_profile
from overture.history.deployed import LivePlan
from overture.history.tables import INV, PROPOSITION_COLUMNS, join_categories, split_categories
from overture.store import Database
from overture.store.raw import driver_time, for_driver

_BATCH = 20_000


def read_history(db: Database, live: LivePlan, audience: str, now: dt.datetime) -> pa.Table:
    """The environment's counted history (history/counted.py) as the runtime would read it
    at `now`, every profile of the audience (columns: policies.HISTORY_COLUMNS)."""
    columns: dict[str, list[Any]] = {name: [] for name, _type in HISTORY_COLUMNS}
    query = every_profile(live.lookback, live.environment, now, audience=audience)
    if query is not None:
        with db.engine.connect() as conn:
            for row in _stream(conn, query):
                columns["profile_id"].append(row.profile_id)
                columns["event"].append(row.kind)
                columns["offer_code"].append(row.offer_code or "")
                columns["categories"].append(list(split_categories(row.categories)))
                columns["channel"].append(row.channel or "")
                columns["at"].append(row.at)
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
                limits.setdefault(offer, []).append((rule.period(now), rule.limit))
    if not limits:
        return hold
    sqlite = db.is_sqlite
    with db.engine.begin() as conn:
        for offer, counters in sorted(limits.items()):
            used = {}
            for period, _limit in counters:
                conn.exec_driver_sql(
                    for_driver(t.ENSURE_INVENTORY, sqlite), (live.environment, offer, period)
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
    sqlite = conn.dialect.name == "sqlite"
    conn.exec_driver_sql(for_driver(t.ADD_INVENTORY, sqlite), (n, environment, offer, period))


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
    categories = {code: join_categories(chain) for code, chain in live.offer_categories.items()}
    given: dict[str, int] = {}
    recipients: set[str] = set()
    total = 0
    postgres = db.engine.dialect.name == "postgresql"
    decided_at = driver_time(now, not postgres)
    deltas: rollups.Deltas = {}
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
                        "",  # segments: a batch does not record them (yet)
                        rank,
                        score,
                        1.0,
                        bool(fallback),
                        decided_at,
                    )
                )
                given[offer] = given.get(offer, 0) + 1
                recipients.add(who)
            total += len(rows)
            _insert(conn, rows, postgres)
            _rollup(rows, deltas)
        bump = for_driver(t.BUMP_VERSION, not postgres)
        ordered = sorted(recipients)
        for start in range(0, len(ordered), _BATCH):
            conn.exec_driver_sql(
                bump, [(live.environment, audience, p) for p in ordered[start : start + _BATCH]]
            )
        _release(conn, hold, given)
        if deltas:  # last, just before the commit: its rows are held briefly
            conn.exec_driver_sql(
                for_driver(rollups.UPSERT, not postgres), rollups.upsert_rows(deltas)
            )
    hold.taken.clear()
    return total, given


def _rollup(rows: list[tuple[Any, ...]], deltas: rollups.Deltas) -> None:
    """Add what these propositions add to the reports' rollup (history/rollups.py) to
    `deltas`, written once at the end of the run's transaction."""
    named = (dict(zip(PROPOSITION_COLUMNS, row, strict=True)) for row in rows)
    rollups.propositions(({**r, "decided_at": _as_time(r["decided_at"])} for r in named), deltas)


def _as_time(value: Any) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))


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
    conn.exec_driver_sql(t.INSERT_PROPOSITION, rows)
