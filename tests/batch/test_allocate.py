"""Batch allocation on DuckDB decides what the real-time engine decides, profile by profile,
with the same history and instant: capping (including what the run itself gives),
suppression, category limits, fallbacks and inventory included.

Inventory is where batch and real time must differ: the engine serves whoever asks first,
the batch the highest scorers. So each profile is compared with the engine deciding with
the inventory as the batch left it for that profile (see parity.py, which test_spark.py
shares)."""

from __future__ import annotations

import math
import random
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from overture.batch.allocate import Method, allocate
from overture.batch.lists import _bits
from overture.catalog import load_catalog
from overture.catalog.model import CappingPolicy, InventoryPolicy, SuppressionPolicy, Weight
from overture.demo import CATALOG_PATH, profiles
from overture.engine import DecisionRequest, NoHistory, PlacementRequest, build_plan
from tests.batch.parity import NOW, PLACEMENTS, SPENT, World, assert_equals_the_engine, make_world
from tests.demo import DEMO_AS_OF

Setup = tuple[World, duckdb.DuckDBPyConnection]


@pytest.fixture(scope="module")
def world() -> Setup:
    data = make_world()
    con = duckdb.connect()
    con.register("population", data.population)
    con.register("history_src", data.history)
    return data, con


METHODS = [
    pytest.param("lists", 16, id="lists"),
    # one ranked candidate kept per recipient: every later choice comes from the tail
    pytest.param("lists", 1, id="lists-prefix-1"),
    pytest.param("rows", 16, id="rows"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("method", "prefix"), METHODS)
@pytest.mark.parametrize(("placement", "count"), PLACEMENTS)
def test_batch_allocation_equals_the_engine(
    world: Setup, placement: str, count: int | None, method: Method, prefix: int
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
        method=method,
        prefix=prefix,
    )
    assert allocation.method == method
    assert_equals_the_engine(data, allocation, placement, count)
    if method == "lists" and prefix == 1 and allocation.n > 1:
        beyond = con.sql("SELECT count(*) FROM _alloc_chosen WHERE pos > 1").fetchall()[0][0]
        assert beyond > 0, "the tail was never needed: the test does not test it"


@pytest.mark.slow
@pytest.mark.parametrize(("placement", "count"), PLACEMENTS)
def test_both_methods_choose_alike(world: Setup, placement: str, count: int | None) -> None:
    """Same propositions, same rounds, same inventory refusals, whichever way it runs."""
    data, con = world
    runs = [
        allocate(
            con,
            data.plan,
            placement,
            "population",
            count,
            now=NOW,
            history="history_src",
            inventory_used=SPENT,
            method=method,
        )
        for method in ("lists", "rows")
    ]
    assert runs[0].rows() == runs[1].rows()
    assert (runs[0].rounds, runs[0].refusals) == (runs[1].rounds, runs[1].refusals)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_both_methods_choose_alike_whatever_the_policies(world: Setup, seed: int) -> None:
    """Random capping, suppression and inventory policies (per offer, category or channel,
    over offers or categories), placement sizes, category limits and fallbacks:
    the lists (with 1 row kept per recipient, so the tails, and with 16) choose what the
    row table does."""
    data, _con = world
    rng = random.Random(seed)
    base = load_catalog(CATALOG_PATH)
    codes = sorted(o.code for o in base.offers)
    categories = [c.name for c in base.categories]
    policies: list[Any] = list(base.policies)
    for i in range(rng.randint(10, 70)):
        scope: dict[str, Any] = (  # (unscoped, a tight policy would block everyone)
            {"categories": rng.sample(categories, rng.randint(1, 3))}
            if rng.random() < 0.6
            else {"offers": rng.sample(codes, rng.randint(1, 4))}
        )
        kind = rng.choice(["capping", "capping", "suppression", "inventory"])
        per = rng.choice(["offer", "category", "channel"])
        if kind == "capping":
            policy: Any = CappingPolicy(
                name=f"cap{i}", kind=kind, per=per, limit=rng.randint(1, 3), window="30d", **scope
            )
        elif kind == "suppression":
            policy = SuppressionPolicy(
                name=f"sup{i}",
                kind=kind,
                after=rng.choice(["accepted", "rejected"]),
                times=rng.randint(1, 2),
                per=rng.choice(["offer", "category"]),
                **scope,
            )
        else:
            policy = InventoryPolicy(
                name=f"inv{i}", kind=kind, limit=rng.choice([5, 30, 100]), per="day", **scope
            )
        policies.append(policy)
    placements = [
        p.model_copy(
            update={"max_offers": rng.randint(1, 5), "max_per_category": rng.choice([None, 1, 2])}
        )
        for p in base.placements
    ]
    catalog = base.model_copy(update={"policies": policies, "placements": placements})
    plan = build_plan(catalog, NOW)
    con = duckdb.connect()
    con.register("population", data.population.slice(0, 1500))
    con.register("history_src", data.history)
    variants: list[tuple[Method, int]] = [("rows", 16), ("lists", 16), ("lists", 1)]
    given = 0
    for placement in rng.sample(sorted(plan.placements), 3):
        runs = [
            allocate(
                con,
                plan,
                placement,
                "population",
                now=NOW,
                history="history_src",
                method=method,
                prefix=prefix,
            )
            for method, prefix in variants
        ]
        want = (runs[0].rows(), runs[0].rounds, runs[0].refusals)
        for run in runs[1:]:
            assert (run.rows(), run.rounds, run.refusals) == want, placement
        given += len(want[0])
    assert given  # (seeds 0 and 3 also run inventories out)


def test_an_unknown_method_is_refused(world: Setup) -> None:
    data, con = world
    method: Any = "fast"
    with pytest.raises(ValueError, match="unknown allocation method 'fast'"):
        allocate(con, data.plan, "web_home_hero", "population", now=NOW, method=method)


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
        f"SELECT r.recipient, c.score FROM _alloc_refused r JOIN ({allocation.candidates.sql}) c "
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


def test_shared_policies_as_bit_sets_span_words() -> None:
    """More than 63 shared policies take more than one 63-bit word; each cap is one bit
    of one word, and a recipient's closed caps meet an offer's exactly when they share one."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE caps AS SELECT * FROM (VALUES (1, 1), (1, 63), (2, 64), (2, 126), (3, 127))"
    )
    got = con.sql(_bits(3, "k", "SELECT col0 AS k, col1 AS cap FROM caps")).fetchall()
    top = 1 << 62
    assert sorted(got) == [(1, 1 | top, 0, 0), (2, 0, 1 | top, 0), (3, 0, 0, 1)]


@pytest.mark.parametrize("method", ["lists", "rows"])
def test_a_nan_score_is_no_score(method: Method) -> None:
    """A weight over a profile value that is NaN scores NaN: the engine ranks nothing with
    it (NaN > 0 is false in Python), and neither does the batch (NaN > 0 is true in DuckDB
    and Spark, and sorts first or last depending on the way)."""
    catalog = load_catalog(CATALOG_PATH)
    spend = Weight(value="monthly_card_spend / 10.0")
    offers = [
        o.model_copy(update={"weights": [spend]}) if o.code == "CC-GOLD" else o
        for o in catalog.offers
    ]
    plan = build_plan(catalog.model_copy(update={"offers": offers}), NOW)
    table = profiles.generate(300, as_of=DEMO_AS_OF)
    column = table.schema.get_field_index("monthly_card_spend")
    spends = table.column(column).to_pylist()
    nan = [math.nan if i % 2 else v for i, v in enumerate(spends)]
    table = table.set_column(column, "monthly_card_spend", pa.array(nan, pa.float64()))
    con = duckdb.connect()
    con.register("population", table)
    got: dict[str, list[tuple[str, float]]] = {}
    for recipient, _rank, offer, score, _fallback in allocate(
        con, plan, "email_banner", "population", 2, now=NOW, method=method
    ).rows():
        got.setdefault(recipient, []).append((offer, score))
    differ = []
    for row in table.to_pylist():
        decision = plan.decide(
            DecisionRequest((PlacementRequest("email_banner", 2),), profile=row, now=NOW),
            NoHistory(),
        )
        want = [(p.offer_code, p.score) for p in decision.placements[0].propositions]
        if got.get(str(row["customer_id"]), []) != want:
            differ.append((row["customer_id"], want, got.get(str(row["customer_id"]))))
    assert not differ, differ[:3]
    assert any(offer == "CC-GOLD" for props in got.values() for offer, _s in props)
