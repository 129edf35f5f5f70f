"""Batch allocation on DuckDB decides what the real-time engine decides, profile by profile,
with the same history and instant: capping (including what the run itself gives),
suppression, category limits, fallbacks and inventory included.

Inventory is where batch and real time must differ: the engine serves whoever asks first,
the batch the highest scorers. So each profile is compared with the engine deciding with
the inventory as the batch left it for that profile (see parity.py, which test_spark.py
shares)."""

from __future__ import annotations

import duckdb
import pytest

from overture.batch.allocate import allocate
from overture.catalog import load_catalog
from overture.catalog.model import Weight
from overture.demo import CATALOG_PATH
from overture.engine import build_plan
from tests.batch.parity import NOW, PLACEMENTS, SPENT, World, assert_equals_the_engine, make_world

Setup = tuple[World, duckdb.DuckDBPyConnection]


@pytest.fixture(scope="module")
def world() -> Setup:
    data = make_world()
    con = duckdb.connect()
    con.register("population", data.population)
    con.register("history_src", data.history)
    return data, con


@pytest.mark.parametrize(("placement", "count"), PLACEMENTS)
def test_batch_allocation_equals_the_engine(
    world: Setup, placement: str, count: int | None
) -> None:
    data, con = world
    allocation = allocate(
        con,
        data.plan,
        placement,
        "population",
        count,
        now=NOW,
        history="history_src",
        inventory_used=SPENT,
    )
    assert_equals_the_engine(data, allocation, placement, count)


def test_the_history_blocks_offers(world: Setup) -> None:
    """The history is not decoration: without it the batch gives other offers."""
    data, con = world
    plan = data.plan
    with_history = set(
        allocate(con, plan, "web_home_hero", "population", 3, now=NOW, history="history_src").rows()
    )
    without = set(allocate(con, plan, "web_home_hero", "population", 3, now=NOW).rows())
    assert with_history != without


def test_inventory_goes_to_the_highest_scorers(world: Setup) -> None:
    """60 Platinum cards left: at most 60 recipients get one, no recipient refused it
    scores it higher than one who got it in the same round, and the refused fall through
    to another offer (the parity test above checks which)."""
    _data, con = world
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
