"""Batch allocation on DuckDB decides what the real-time engine decides, profile by profile,
with the same history and instant: capping (including what the run itself gives), and
suppression, category limits and fallbacks included."""

from __future__ import annotations

import datetime as dt
import math
import random

import duckdb
import pyarrow as pa
import pytest

from overture.batch.allocate import allocate
from overture.catalog import load_catalog
from overture.demo import CATALOG_PATH, profiles
from overture.engine import (
    DecisionPlan,
    DecisionRequest,
    HistoryEvent,
    InMemoryHistory,
    PlacementRequest,
    build_plan,
)

PROFILES = 1200
NOW = dt.datetime(2026, 6, 15, 10, 30)
CHANNELS = ("web", "mobile_app", "email", "call_centre")
PLACEMENTS = [
    ("web_home_hero", 3),
    ("web_account_sidebar", None),
    ("email_newsletter_slot", 3),
    ("cc_next_best_action", 2),
    ("app_home_card", 1),
]


def make_history(plan: DecisionPlan, ids: list[str], seed: int = 11) -> list[HistoryEvent]:
    """Presentations, acceptances and rejections over the last 40 days, dense enough that
    every capping and suppression policy of the demo blocks someone (seeded)."""
    rng = random.Random(seed)
    offers = {
        c.offer.code: c.offer.categories
        for p in plan.placements.values()
        for cands in p.candidates.values()
        for c in cands
    }
    codes = sorted(offers)
    events = []
    for pid in ids:
        for _ in range(rng.randrange(0, 12)):
            code = rng.choice(codes)
            kind = rng.choices(("presented", "accepted", "rejected"), (8, 1, 2))[0]
            at = NOW - dt.timedelta(minutes=rng.randrange(1, 40 * 24 * 60))
            events.append(HistoryEvent(pid, kind, code, offers[code], rng.choice(CHANNELS), at))
    return events


@pytest.fixture(scope="module")
def world() -> tuple[
    DecisionPlan, duckdb.DuckDBPyConnection, list[dict[str, object]], InMemoryHistory
]:
    plan = build_plan(load_catalog(CATALOG_PATH), NOW)
    table = profiles.generate(PROFILES)
    rows = table.to_pylist()
    events = make_history(plan, [str(r["customer_id"]) for r in rows])
    memory = InMemoryHistory()
    for e in events:
        memory.record(e)
    con = duckdb.connect()
    con.register("population", table)
    con.register(
        "history_src",
        pa.table(
            {
                "profile_id": [e.profile_id for e in events],
                "event": [e.event for e in events],
                "offer_code": [e.offer_code for e in events],
                "categories": [list(e.categories) for e in events],
                "channel": [e.channel for e in events],
                "at": [e.at for e in events],
            }
        ),
    )
    return plan, con, rows, memory


@pytest.mark.parametrize(("placement", "count"), PLACEMENTS)
def test_batch_allocation_equals_the_engine(
    world: tuple[DecisionPlan, duckdb.DuckDBPyConnection, list[dict[str, object]], InMemoryHistory],
    placement: str,
    count: int | None,
) -> None:
    plan, con, rows, memory = world
    result = allocate(
        con, plan, placement, "population", count, now=NOW, history="history_src"
    ).fetchall()
    batch: dict[str, list[tuple[int, str, float, bool]]] = {}
    for recipient, rank, offer, score, fallback in result:
        batch.setdefault(recipient, []).append((rank, offer, score, fallback))
    differ = []
    fallbacks = 0
    for row in rows:
        decision = plan.decide(
            DecisionRequest((PlacementRequest(placement, count),), profile=row, now=NOW),
            memory,
        )
        expected = [
            (p.rank, p.offer_code, p.score, p.fallback) for p in decision.placements[0].propositions
        ]
        fallbacks += sum(p.fallback for p in decision.placements[0].propositions)
        got = batch.get(str(row["customer_id"]), [])
        same = len(got) == len(expected) and all(
            g[0] == e[0] and g[1] == e[1] and g[3] == e[3] and math.isclose(g[2], e[2])
            for g, e in zip(got, expected, strict=True)
        )
        if not same:
            differ.append((row["customer_id"], expected, got))
    assert not differ, f"{len(differ)} of {len(rows)} differ, e.g. {differ[:2]}"
    assert len(result) > len(rows) // 2  # most recipients get something


def test_the_history_blocks_offers(
    world: tuple[DecisionPlan, duckdb.DuckDBPyConnection, list[dict[str, object]], InMemoryHistory],
) -> None:
    """The history is not decoration: without it the batch gives other offers."""
    plan, con, _rows, _memory = world
    with_history = set(
        allocate(
            con, plan, "web_home_hero", "population", 3, now=NOW, history="history_src"
        ).fetchall()
    )
    without = set(allocate(con, plan, "web_home_hero", "population", 3, now=NOW).fetchall())
    assert with_history != without
