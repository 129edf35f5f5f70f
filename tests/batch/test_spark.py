"""Batch allocation on Spark (local mode) decides what the real-time engine decides, profile
by profile: the same 10,000 demo profiles, generated history and inventory that runs out as
test_allocate.py's DuckDB parity test, on every one of its placements.

The statements are written for DuckDB and translated by sqlglot (QUALIFY, unnest, lists,
timestamps); the candidates query is generated in Spark's dialect, rules included. Every
candidate's score is also compared with DuckDB's (to within 1e-9, as a DOUBLE), not only the
chosen ones'. One Spark session serves the module; it needs pyspark and Java 17+."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from overture.batch.allocate import Allocation, allocate
from overture.batch.engines import DuckDBEngine, SparkEngine, local_spark
from tests.batch import odd_data
from tests.batch.parity import NOW, PLACEMENTS, SPENT, World, assert_equals_the_engine, make_world
from tests.spark import MARKS, require_spark

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

require_spark()
pytestmark = MARKS

_CANDIDATES = "SELECT recipient, offer, score, ord, fallback, allowed FROM _alloc_cand"


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    session = local_spark("overture-tests", cores=2, shuffle_partitions=4)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


@pytest.fixture(scope="module")
def engines(spark: SparkSession, world: World) -> tuple[SparkEngine, DuckDBEngine]:
    """Spark and DuckDB, each with the population and the history from the same Arrow
    tables (pyspark reads Arrow itself: no pandas needed)."""
    on_spark, on_duckdb = SparkEngine(spark), DuckDBEngine()
    for engine in (on_spark, on_duckdb):
        engine.register("population", world.population)
        engine.register("history_src", world.history)
    return on_spark, on_duckdb


def _same_candidates(spark_run: Allocation, duckdb_run: Allocation) -> None:
    """What allocation chose from: every recipient's allowed candidates, same scores."""
    got = {(r, o): rest for r, o, *rest in spark_run.engine.rows(_CANDIDATES)}
    want = {(r, o): rest for r, o, *rest in duckdb_run.engine.rows(_CANDIDATES)}
    assert got.keys() == want.keys(), (
        f"{len(got.keys() - want.keys())} candidates only on Spark, e.g. "
        f"{sorted(got.keys() - want.keys())[:3]}; {len(want.keys() - got.keys())} only on "
        f"DuckDB, e.g. {sorted(want.keys() - got.keys())[:3]}"
    )
    differ = [
        (key, got[key], want[key])
        for key in want
        if not (
            type(got[key][0]) is float
            and math.isclose(got[key][0], want[key][0], rel_tol=1e-9, abs_tol=1e-12)
            and got[key][1:] == want[key][1:]
        )
    ]
    assert not differ, f"{len(differ)} candidates differ (spark, duckdb), e.g. {differ[:3]}"


@pytest.mark.parametrize(("placement", "count"), PLACEMENTS)
def test_spark_allocation_equals_the_engine(
    engines: tuple[SparkEngine, DuckDBEngine],
    world: World,
    placement: str,
    count: int | None,
) -> None:
    on_spark, on_duckdb = engines
    runs = [
        allocate(
            engine,
            world.plan,
            placement,
            "population",
            count,
            now=NOW,
            history="history_src",
            inventory_used=SPENT,
            method="rows",  # DuckDB's too: _same_candidates compares the candidate rows
        )
        for engine in (on_spark, on_duckdb)
    ]
    assert_equals_the_engine(world, runs[0], placement, count)
    _same_candidates(*runs)
    assert (runs[0].rounds, runs[0].refusals) == (runs[1].rounds, runs[1].refusals)


@pytest.mark.parametrize("history", ["history_src", None], ids=["history", "no-history"])
def test_history_and_inventory_counted_on_spark(
    engines: tuple[SparkEngine, DuckDBEngine], world: World, history: str | None
) -> None:
    """Without `inventory_used`, the inventory's counters come from the history's
    presentations (today's: a timestamp comparison); without a history, an empty one of
    the right types is loaded (a list column, a timestamp). Spark gives DuckDB's result."""
    on_spark, on_duckdb = engines
    rows, left = [], []
    for engine in (on_spark, on_duckdb):
        run = allocate(
            engine, world.plan, "app_home_card", "population", 1, now=NOW, history=history
        )
        rows.append(run.rows())
        left.append(engine.rows("SELECT offer, remaining FROM _alloc_inv ORDER BY offer"))
    assert left[0] == left[1]
    assert rows[0] == rows[1]
    assert len(rows[0]) == len(world.rows)


def test_the_lists_method_is_duckdbs(
    engines: tuple[SparkEngine, DuckDBEngine], world: World
) -> None:
    with pytest.raises(ValueError, match="needs DuckDB; use rows on spark"):
        allocate(engines[0], world.plan, "app_home_card", "population", 1, now=NOW, method="lists")


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_odd_data_decided_on_spark_as_in_real_time(
    spark: SparkSession, tmp_path: Path, kind: str
) -> None:
    """NaN, ±inf, null list items, integers past 64 bits and zone-aware timestamps in a
    Parquet or CSV file: a batch on Spark proposes what the engine does (test_odd_data.py
    holds DuckDB and the engine to the same)."""
    plan = odd_data.make_plan()
    path = (
        odd_data.write_parquet(tmp_path / "odd.parquet")
        if kind == "parquet"
        else odd_data.write_csv(tmp_path / "odd.csv")
    )
    want = odd_data.engine_decides(plan, odd_data.meant(csv=kind == "csv"))
    if kind == "parquet":
        assert odd_data.engine_decides(plan, odd_data.ODD) == want
    assert odd_data.batch_decides(plan, SparkEngine(spark), path) == want
