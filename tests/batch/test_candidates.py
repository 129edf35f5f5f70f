"""The candidates query agrees with the real-time engine, profile by profile.

For every placement of the demo catalog and a few thousand demo customers, the SQL's
(recipient, offer, score) rows are exactly the offers the engine's explain output shows
as eligible and scored for that customer, with the same score, at the same instant.
"""

from __future__ import annotations

import datetime as dt
import math

import duckdb
import pytest

from overture.batch import candidates_query
from overture.catalog import load_catalog
from overture.demo import CATALOG_PATH, profiles
from overture.engine import DecisionPlan, DecisionRequest, NoHistory, PlacementRequest, build_plan
from tests.demo import DEMO_AS_OF

PROFILES = 1500
NOW = dt.datetime(2026, 6, 15, 10, 30)  # inside the demo's summer travel window
World = tuple[DecisionPlan, duckdb.DuckDBPyConnection, list[dict[str, object]]]


@pytest.fixture(scope="module")
def world() -> World:
    plan = build_plan(load_catalog(CATALOG_PATH), NOW)
    table = profiles.generate(PROFILES, as_of=DEMO_AS_OF)
    con = duckdb.connect()
    con.register("population", table)
    return plan, con, table.to_pylist()


def engine_scores(plan: DecisionPlan, placement: str, row: dict[str, object]) -> dict[str, float]:
    """What the engine found eligible and scored for this profile (explain traces)."""
    decision = plan.decide(
        DecisionRequest(
            (PlacementRequest(placement, None),),
            profile=row,
            now=NOW,
            explain=True,
        ),
        NoHistory(),
    )
    traces = decision.placements[0].explain
    assert traces is not None
    return {
        t.offer_code: t.score
        for t in traces
        if t.score is not None and t.step not in ("fallback", "candidates")
    }


@pytest.mark.parametrize(
    "placement",
    [
        "web_home_hero",
        "web_account_sidebar",
        "web_product_banner",
        "app_home_card",
        "email_newsletter_slot",
        "cc_next_best_action",
    ],
)
def test_the_sql_scores_what_the_engine_scores(world: World, placement: str) -> None:
    plan, con, rows = world
    query = candidates_query(plan, placement, "population", now=NOW)
    sql_rows: dict[str, dict[str, float]] = {}
    for recipient, offer, score in con.sql(
        f"SELECT recipient, offer, score FROM ({query.sql}) WHERE NOT fallback"
    ).fetchall():
        sql_rows.setdefault(recipient, {})[offer] = score
    assert sql_rows, "the demo catalog has candidates for every placement tested"
    mismatches = []
    for row in rows:
        expected = engine_scores(plan, placement, row)
        got = sql_rows.get(str(row["customer_id"]), {})
        same = expected.keys() == got.keys() and all(
            math.isclose(expected[k], got[k], rel_tol=1e-12) for k in expected
        )
        if not same:
            mismatches.append((row["customer_id"], expected, got))
    assert not mismatches, f"{len(mismatches)} profiles differ, e.g. {mismatches[:2]}"


@pytest.mark.parametrize(
    "placement", ["web_home_hero", "web_account_sidebar", "app_home_card", "cc_next_best_action"]
)
def test_the_lists_hold_the_same_candidates(world: World, placement: str) -> None:
    """DuckDB's one-row-per-recipient lists (the fast allocation's input) hold exactly the
    allowed candidate rows, scores included, and sort into the engine's order."""
    plan, con, _rows = world
    query = candidates_query(plan, placement, "population", now=NOW)
    rows = set(
        con.sql(
            f"SELECT recipient, offer, score, fallback FROM ({query.sql}) WHERE allowed"
        ).fetchall()
    )
    from_lists = set()
    for recipient, ranked, fallbacks in con.sql(
        f"SELECT recipient, list_sort(ranked), fallbacks FROM ({query.lists_sql()})"
    ).fetchall():
        order = [(-e["ns"], query.ranked[e["i"] - 1].ord) for e in ranked]
        assert order == sorted(order, key=lambda so: (-so[0], so[1]))
        from_lists |= {(recipient, query.ranked[e["i"] - 1].code, -e["ns"], False) for e in ranked}
        from_lists |= {(recipient, query.fallbacks[i - 1].code, 0.0, True) for i in fallbacks}
    assert rows and from_lists == rows
