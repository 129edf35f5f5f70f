"""A population of odd data (NaN, ±inf, null list items, integers past 64 bits, zone-aware
timestamps) and what the real-time engine and a batch decide for it, for the odd-data
parity tests on DuckDB (test_odd_data.py) and Spark (test_spark.py).

Each offer's rule reads one field, so that a recipient's propositions say what each rule
made of the recipient's odd value. The same recipients are also given as their "decided
meaning" (`MEANT`: NaN and ±inf null, null items dropped, an integer past 64 bits null,
timestamps naive UTC): the engine decides the odd profile as it decides that one, and the
batch as the engine (docs/batch.md, "Odd data")."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from overture.batch.engines import SqlEngine
from overture.batch.run import BatchSpec, run_batch
from overture.catalog import Catalog
from overture.engine import DecisionPlan, DecisionRequest, PlacementRequest, build_plan
from tests.engine.helpers import make_catalog, offer

NOW = dt.datetime(2026, 6, 15, 12, 0)  # naive UTC
PLACEMENT = "side"
UTC = dt.UTC
MINUS5 = dt.timezone(dt.timedelta(hours=-5))
PLUS5 = dt.timezone(dt.timedelta(hours=5))

RULES = {
    "ARPU-HIGH": "arpu > 100",
    "ARPU-LOW": "arpu < -100",
    "ARPU-NONE": "arpu is None",
    "CREDITS-NONE": "credits is None",
    "CREDITS-NEG": "credits < 0",
    "ADDONS-TWO": "len(addons) == 2",
    "ADDONS-NO-X": "'x' not in addons",
    "TOPUP-TODAY": "date(last_topup) == today()",
    "TOPUP-EARLY": "last_topup < datetime('2026-06-15T04:00:00')",
    "SINCE-TODAY": "since == today()",
}

FIELDS = {
    "id": "string",
    "arpu": "float",
    "credits": "int",
    "addons": "list[string]",
    "last_topup": "datetime",
    "since": "date",
}


def odd_catalog() -> Catalog:
    return make_catalog(
        audiences=[{"name": "customer", "id_field": "id", "fields": FIELDS}],
        placements=[
            {
                "name": PLACEMENT,
                "channel": "web",
                "zone": "side",
                "max_offers": len(RULES),
                "fields": {"title": {"required": True}},
            }
        ],
        offers=[
            offer(code, placements=(PLACEMENT,), eligibility=rule) for code, rule in RULES.items()
        ],
    )


def make_plan() -> DecisionPlan:
    return build_plan(odd_catalog(), NOW - dt.timedelta(days=1), validated=True)


def _row(id_: str, **values: Any) -> dict[str, Any]:
    return {"id": id_, **{f: None for f in FIELDS if f != "id"}, **values}


# (what arrives, what it means); a timestamp's wall time in Pacific/Kiritimati (UTC+14) or
# New York falls on another day than in UTC, and a -05:00 one on another day than its own
ROWS: list[tuple[dict[str, Any], dict[str, Any]]] = [
    (_row("A", arpu=math.nan), _row("A")),
    (_row("B", arpu=math.inf), _row("B")),
    (_row("C", arpu=-math.inf), _row("C")),
    (_row("D", arpu=150.0, credits=3), _row("D", arpu=150.0, credits=3)),
    (_row("E", credits=-(10**20)), _row("E")),
    (_row("F", credits=10**20), _row("F")),
    (_row("G", credits=-(2**63)), _row("G", credits=-(2**63))),
    (_row("H", addons=["y", None, "z"]), _row("H", addons=["y", "z"])),
    (_row("I", addons=[None]), _row("I", addons=[])),
    (_row("J", addons=[]), _row("J", addons=[])),
    (_row("K", addons=["x", None]), _row("K", addons=["x"])),
    (
        _row("L", last_topup=dt.datetime(2026, 6, 15, 11, 0, tzinfo=UTC)),
        _row("L", last_topup=dt.datetime(2026, 6, 15, 11, 0)),
    ),
    (
        _row("M", last_topup=dt.datetime(2026, 6, 14, 22, 0, tzinfo=MINUS5)),
        _row("M", last_topup=dt.datetime(2026, 6, 15, 3, 0)),
    ),
    (
        _row("N", last_topup=dt.datetime(2026, 6, 15, 2, 30, tzinfo=PLUS5)),
        _row("N", last_topup=dt.datetime(2026, 6, 14, 21, 30)),
    ),
    (
        _row("O", since=dt.datetime(2026, 6, 14, 22, 0, tzinfo=MINUS5)),
        _row("O", since=dt.date(2026, 6, 15)),
    ),
    (
        _row("P", since=dt.datetime(2026, 6, 15, 11, 0, tzinfo=UTC)),
        _row("P", since=dt.date(2026, 6, 15)),
    ),
]
ODD = [odd for odd, _meant in ROWS]
MEANT = [meant for _odd, meant in ROWS]


def write_parquet(path: Path) -> str:
    """The odd rows as Parquet: zone-aware timestamps (in UTC), the integers past 64 bits
    as DECIMAL(38, 0) (what a database's NUMERIC column is read as)."""
    table = pa.table(
        {
            "id": pa.array([r["id"] for r in ODD], pa.string()),
            "arpu": pa.array([r["arpu"] for r in ODD], pa.float64()),
            "credits": pa.array(
                [None if r["credits"] is None else Decimal(r["credits"]) for r in ODD],
                pa.decimal128(38, 0),
            ),
            "addons": pa.array([r["addons"] for r in ODD], pa.list_(pa.string())),
            "last_topup": pa.array([r["last_topup"] for r in ODD], pa.timestamp("us", tz="UTC")),
            "since": pa.array([r["since"] for r in ODD], pa.timestamp("us", tz="UTC")),
        }
    )
    pq.write_table(table, path)
    return str(path)


def write_csv(path: Path) -> str:
    """The odd rows as CSV: nan and ±inf as text, integers past 64 bits as they are, lists
    joined with ';' (null items cannot be written: left out), timestamps in ISO 8601 with
    their offsets."""

    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, list):
            return ";".join(v for v in value if v is not None)
        if isinstance(value, dt.datetime):
            return value.isoformat()
        if isinstance(value, float) and not math.isfinite(value):
            return {"nan": "nan", "inf": "inf", "-inf": "-inf"}[str(value)]
        return str(value)

    lines = [",".join(FIELDS)]
    lines += [",".join(cell(r[f]) for f in FIELDS) for r in ODD]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


CSV_MEANT = {  # a CSV cannot hold null list items, nor tell an empty list from a null one
    "H": ["y", "z"],
    "I": [],
    "K": ["x"],
}


def meant(csv: bool = False) -> list[dict[str, Any]]:
    rows = [dict(r) for r in MEANT]
    if csv:
        for r in rows:
            r["addons"] = CSV_MEANT.get(r["id"], r["addons"] or [])
    return rows


def engine_decides(plan: DecisionPlan, rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """What the real-time engine proposes to each profile (the offers, in rank order)."""
    got = {}
    for row in rows:
        decision = plan.decide(
            DecisionRequest((PlacementRequest(PLACEMENT, None),), profile=row, now=NOW)
        )
        got[str(row["id"])] = [p.offer_code for p in decision.placements[0].propositions]
    return got


def batch_decides(plan: DecisionPlan, engine: SqlEngine, population: str) -> dict[str, list[str]]:
    """What a batch (a simulation, as `overture simulate` runs it) proposes to each
    recipient of the file."""
    spec = BatchSpec(placement=PLACEMENT, population=population, simulate=True, now=NOW)
    result = run_batch(spec, plan, engine=engine)
    got: dict[str, list[str]] = {str(r["id"]): [] for r in ODD}
    for recipient, _rank, code, _score, _fallback in result.allocation.rows():
        got[str(recipient)].append(code)
    return got
