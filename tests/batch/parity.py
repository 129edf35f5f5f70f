"""What the batch parity tests share, whatever engine the batch runs on: the demo world (10,000
profiles, a generated history, an inventory that runs out) and the profile-by-profile
comparison of an allocation with the real-time engine (`plan.decide`).

Inventory is where batch and real time must differ: the engine serves whoever asks first,
the batch the highest scorers. So each profile is compared with the engine deciding with
the inventory as the batch left it for that profile: an offer that ran out during the run
is exhausted for a profile that did not get it."""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass

import pyarrow as pa

from benchmarks.batch import Exhausted  # (the batch benchmark compares the same way)
from overture.batch.allocate import Allocation
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
from tests.demo import DEMO_AS_OF

PROFILES = 10_000
NOW = dt.datetime(2026, 11, 23, 10, 30)
# the demo's Platinum card has 500 presentations a day: leave 60, fewer than want it
SPENT = {("CC-PLATINUM", "2026-11-23"): 440}
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


@dataclass(frozen=True)
class World:
    """The demo plan at NOW, its profiles (as a table for the batch and as dicts for the
    engine) and their history (as a table for the batch and in memory for the engine)."""

    plan: DecisionPlan
    population: pa.Table
    rows: list[dict[str, object]]
    history: pa.Table
    memory: InMemoryHistory


def make_world(count: int = PROFILES) -> World:
    plan = build_plan(load_catalog(CATALOG_PATH), NOW)
    table = profiles.generate(count, as_of=DEMO_AS_OF)
    rows = table.to_pylist()
    events = make_history(plan, [str(r["customer_id"]) for r in rows])
    memory = InMemoryHistory()
    for e in events:
        memory.record(e)
    history = pa.table(
        {
            "profile_id": [e.profile_id for e in events],
            "event": [e.event for e in events],
            "offer_code": [e.offer_code for e in events],
            "categories": [list(e.categories) for e in events],
            "channel": [e.channel for e in events],
            "at": [e.at for e in events],
        }
    )
    return World(plan, table, rows, history, memory)


def assert_equals_the_engine(
    world: World, allocation: Allocation, placement: str, count: int | None
) -> None:
    """Every profile's propositions (rank, offer, score, fallback) are the engine's, scores
    to within 1e-9 and of type float (a DECIMAL coming out of an engine is a bug)."""
    plan, memory = world.plan, world.memory
    result = allocation.rows()
    ran_out = {
        o for (o,) in allocation.engine.rows("SELECT offer FROM _alloc_inv WHERE remaining <= 0")
    }
    exhausted = Exhausted(memory, ran_out)
    if allocation.refusals:
        assert ran_out == {"CC-PLATINUM"}
    batch: dict[str, list[tuple[int, str, float, bool]]] = {}
    for recipient, rank, offer, score, fallback in result:
        assert type(score) is float, f"score {score!r} of {recipient}/{offer} is not a float"
        batch.setdefault(recipient, []).append((rank, offer, score, fallback))
    differ = []
    for row in world.rows:
        got = batch.get(str(row["customer_id"]), [])
        given = {g[1] for g in got}
        decision = plan.decide(
            DecisionRequest((PlacementRequest(placement, count),), profile=row, now=NOW),
            exhausted if ran_out - given else memory,
        )
        expected = [
            (p.rank, p.offer_code, p.score, p.fallback) for p in decision.placements[0].propositions
        ]
        same = len(got) == len(expected) and all(
            g[0] == e[0] and g[1] == e[1] and g[3] == e[3] and math.isclose(g[2], e[2])
            for g, e in zip(got, expected, strict=True)
        )
        if not same:
            differ.append((row["customer_id"], expected, got))
    assert not differ, f"{len(differ)} of {len(world.rows)} differ, e.g. {differ[:2]}"
    assert len(result) > len(world.rows) // 2  # most recipients get something
