"""Odd data (NaN, ±inf, null list items, integers past 64 bits, zone-aware timestamps)
decided in real time and in a batch on DuckDB gives the same propositions, whatever the
machine's time zone: the engine on the profiles as they arrive, the engine on the profiles
as `overture decide --profiles` reads them from the file, and a batch over the file (or over
a database query's rows, registered as Arrow). The Spark run is in test_spark.py."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from overture.batch.engines import DuckDBEngine
from overture.batch.population import population_columns, read_profile
from overture.rules import Type
from overture.store import Database
from tests.batch.odd_data import (
    FIELDS,
    NOW,
    ODD,
    PLACEMENT,
    batch_decides,
    engine_decides,
    make_plan,
    meant,
    write_csv,
    write_parquet,
)
from tests.integration import postgres_url

# UTC+14 and UTC-4/-5: a timestamp's local day differs from its UTC day for half the day
ZONES = ["UTC", "Pacific/Kiritimati", "America/New_York"]


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_odd_data_decided_in_a_batch_as_in_real_time(tmp_path: Path, kind: str, zone: str) -> None:
    plan = make_plan()
    path = (
        write_parquet(tmp_path / "odd.parquet")
        if kind == "parquet"
        else write_csv(tmp_path / "odd.csv")
    )
    want = engine_decides(plan, meant(csv=kind == "csv"))
    if kind == "parquet":  # (a CSV cannot hold what the rows hold: null items, null lists)
        assert engine_decides(plan, ODD) == want
    # a connection in another zone, as on a machine whose zone is not UTC
    con = duckdb.connect()
    con.execute(f"SET TimeZone = '{zone}'")
    assert batch_decides(plan, DuckDBEngine(con), path) == want
    fields = plan.audiences["customer"].fields
    read = [read_profile(path, fields, "id", str(r["id"])) for r in ODD]
    assert engine_decides(plan, [r for r in read if r is not None]) == want
    # and the semantics are the ones decided, not only the same on both sides
    nothing = {"ARPU-NONE", "CREDITS-NONE"} | ({"ADDONS-NO-X"} if kind == "csv" else set())
    assert set(want["A"]) == set(want["B"]) == set(want["C"]) == nothing
    assert "CREDITS-NEG" not in want["E"] and "CREDITS-NEG" in want["G"]
    assert "TOPUP-TODAY" in want["L"] and "TOPUP-EARLY" in want["M"]
    assert "SINCE-TODAY" in want["O"] and "SINCE-TODAY" in want["P"]


@pytest.mark.integration
def test_odd_data_from_a_database_query(tmp_path: Path) -> None:
    """A population query's rows are registered as Arrow (NaN and infinities as floats,
    NUMERIC as DECIMAL, arrays with nulls, timestamptz as zone-aware timestamps)."""

    def literal(value: object, sql_type: str) -> str:
        if value is None:
            return f"NULL::{sql_type}"
        if isinstance(value, list):
            items = ", ".join("NULL" if v is None else f"'{v}'" for v in value)
            return f"ARRAY[{items}]::text[]"
        return f"'{value}'::{sql_type}"

    types = {"id": "text", "arpu": "float8", "credits": "numeric", "addons": "text[]"}
    types |= {"last_topup": "timestamptz", "since": "timestamptz"}
    rows = ["(" + ", ".join(literal(r[f], types[f]) for f in FIELDS) + ")" for r in ODD]
    query = f"SELECT * FROM (VALUES {', '.join(rows)}) AS t({', '.join(FIELDS)})"
    db = Database(postgres_url())
    try:
        from overture.batch.run import BatchSpec, run_batch

        plan = make_plan()
        spec = BatchSpec(placement=PLACEMENT, population_query=query, simulate=True, now=NOW)
        con = duckdb.connect()
        con.execute("SET TimeZone = 'Pacific/Kiritimati'")
        result = run_batch(spec, plan, db=db, engine=DuckDBEngine(con))
    finally:
        db.dispose()
    got: dict[str, list[str]] = {str(r["id"]): [] for r in ODD}
    for recipient, _rank, code, _score, _fallback in result.allocation.rows():
        got[str(recipient)].append(code)
    assert got == engine_decides(plan, meant()) == engine_decides(plan, ODD)


def test_the_normalising_select_is_written_once_for_every_type() -> None:
    """What population_columns makes of each kind of column (DuckDB's spelling)."""
    fields = {
        "id": Type.STRING,
        "f": Type.FLOAT,
        "i": Type.INT,
        "small": Type.INT,
        "l": Type.LIST,
        "t": Type.DATETIME,
        "gone": Type.BOOL,
    }
    types = {
        "ID": "INTEGER",
        "f": "DOUBLE",
        "i": "HUGEINT",
        "small": "INTEGER",
        "l": "VARCHAR[]",
        "t": "TIMESTAMP WITH TIME ZONE",
        "extra": "VARCHAR",
    }
    select = population_columns(types, fields, "id", "duckdb")
    assert select[0] == 'CAST("ID" AS VARCHAR) AS "id"'
    assert "isnan" in select[1] and "'inf'" in select[1]
    assert "TRY_CAST" in select[2] and select[3] == 'CAST("small" AS BIGINT) AS "small"'
    assert "list_filter" in select[4]
    assert select[5] == 'CAST(timezone(\'UTC\', "t") AS TIMESTAMP) AS "t"'
    assert select[6] == 'CAST(NULL AS BOOLEAN) AS "gone"'
    assert len(select) == len(fields)
    spark = population_columns({"t": "timestamp", "id": "string"}, fields, "id", "spark")
    assert spark[5] == 'CAST("t" AS TIMESTAMP) AS "t"'  # the session's zone is UTC


def test_a_duckdb_engine_works_in_utc() -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'America/New_York'")
    engine = DuckDBEngine(con)
    assert engine.rows("SELECT current_setting('TimeZone')") == [("UTC",)]
    got = engine.rows("SELECT CAST(TIMESTAMPTZ '2026-06-14 22:00:00-05' AS DATE)")
    assert str(got[0][0]) == "2026-06-15"
