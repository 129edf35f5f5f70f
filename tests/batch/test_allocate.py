"""Batch allocation on DuckDB decides what the real-time engine decides, profile by profile,
with the same history and instant: capping (including what the run itself gives),
suppression, category limits, fallbacks and inventory included.

Inventory is where batch and real time must differ: the engine serves whoever asks first,
the batch the highest scorers. So each profile is compared with the engine deciding with
the inventory as the batch left it for that profile: an offer that ran out during the run
is exhausted for a profile that did not get it."""

from __future__ import annotations

import datetime as dt
import math
import random

import duckdb
import pyarrow as pa
import pytest

from overture.batch.allocate import allocate
from overture.catalog import load_catalog
from overture.catalog.model import Weight
from overture.demo import CATALOG_PATH, profiles
from overture.engine import (
    DecisionPlan,
    DecisionRequest,
    History,
    HistoryEvent,
    InMemoryHistory,
    PlacementRequest,
    build_plan,
)

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


class Exhausted:
    """A history in which some offers' inventories have run out."""

    def __init__(self, inner: History, offers: set[str]) -> None:
        self.inner = inner
        self.offers = offers

    def count(
        self, profile_id: str, event: str, scope: str, key: str, since: dt.datetime | None
    ) -> int:
        return self.inner.count(profile_id, event, scope, key, since)

    def total(self, offer_code: str, event: str, since: dt.datetime | None) -> int:
        if offer_code in self.offers:
            return 1 << 30
        return self.inner.total(offer_code, event, since)


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
    allocation = allocate(
        con,
        plan,
        placement,
        "population",
        count,
        now=NOW,
        history="history_src",
        inventory_used=SPENT,
    )
    result = allocation.rows()
    ran_out = {
        o for (o,) in allocation.engine.rows("SELECT offer FROM _alloc_inv WHERE remaining <= 0")
    }
    exhausted = Exhausted(memory, ran_out)
    if allocation.refusals:
        assert ran_out == {"CC-PLATINUM"}
    batch: dict[str, list[tuple[int, str, float, bool]]] = {}
    for recipient, rank, offer, score, fallback in result:
        batch.setdefault(recipient, []).append((rank, offer, score, fallback))
    differ = []
    fallbacks = 0
    for row in rows:
        got = batch.get(str(row["customer_id"]), [])
        given = {g[1] for g in got}
        decision = plan.decide(
            DecisionRequest((PlacementRequest(placement, count),), profile=row, now=NOW),
            exhausted if ran_out - given else memory,
        )
        expected = [
            (p.rank, p.offer_code, p.score, p.fallback) for p in decision.placements[0].propositions
        ]
        fallbacks += sum(p.fallback for p in decision.placements[0].propositions)
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
        allocate(con, plan, "web_home_hero", "population", 3, now=NOW, history="history_src").rows()
    )
    without = set(allocate(con, plan, "web_home_hero", "population", 3, now=NOW).rows())
    assert with_history != without


def test_inventory_goes_to_the_highest_scorers(
    world: tuple[DecisionPlan, duckdb.DuckDBPyConnection, list[dict[str, object]], InMemoryHistory],
) -> None:
    """60 Platinum cards left: at most 60 recipients get one, no recipient refused it
    scores it higher than one who got it in the same round, and the refused fall through
    to another offer (the parity test above checks which)."""
    _plan, con, _rows, _memory = world
    catalog = load_catalog(CATALOG_PATH)
    scored = Weight(value="credit_score / 100.0")  # so that scores differ by recipient
    offers = [
        o.model_copy(update={"weights": [scored]}) if o.code == "CC-PLATINUM" else o
        for o in catalog.offers
    ]
    plan = build_plan(catalog.model_copy(update={"offers": offers}), NOW)
    allocation = allocate(
        con, plan, "web_home_hero", "population", 1, now=NOW, inventory_used=SPENT
    )
    assert allocation.refusals > 0  # more than 60 wanted it
    got = con.sql(
        "SELECT recipient, score FROM _alloc_chosen WHERE offer = 'CC-PLATINUM'"
    ).fetchall()
    assert len(got) == 60
    refused = con.sql(
        "SELECT r.recipient, c.score FROM _alloc_refused r JOIN _alloc_cand c "
        "ON c.recipient = r.recipient AND c.offer = r.offer"
    ).fetchall()
    assert refused
    best = sorted((-score, r) for r, score in [*got, *refused])[:60]
    assert sorted(r for _s, r in best) == sorted(r for r, _s in got)
    assert max(score for _r, score in refused) < max(score for _r, score in got)
    fell = con.sql(
        "SELECT count(*) FROM _alloc_chosen WHERE recipient IN "
        "(SELECT recipient FROM _alloc_refused) AND offer <> 'CC-PLATINUM'"
    ).fetchall()
    assert fell[0][0] == len(refused)
