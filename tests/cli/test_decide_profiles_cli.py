"""`overture decide --profiles FILE` reads a profile's odd data (NaN, ±inf, null list
items, integers past 64 bits, zone-aware timestamps) as a batch reads the file, whatever
the machine's time zone, and without pytz (DuckDB's conversion of a TIMESTAMP WITH TIME
ZONE to Python needs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from overture.catalog.codec import encode
from overture.cli import app
from tests.batch.odd_data import ODD, engine_decides, make_plan, meant, odd_catalog, write_parquet

NOW = "2026-06-15T12:00:00"  # odd_data.NOW


def _offers(output: str) -> list[str]:
    """The offers of the decision's one placement, from `decide --json`."""
    placement = json.loads(output)["placements"][0]
    items = placement.get("offers", placement.get("propositions", []))
    return [item.get("offer", item.get("offer_code")) for item in items]


def _args(folder: Path, profile_id: str) -> list[str]:
    catalog = folder / "odd.yaml"
    if not catalog.exists():
        catalog.write_text(encode(odd_catalog()))
    parquet = folder / "odd.parquet"
    if not parquet.exists():
        write_parquet(parquet)
    return [
        "decide",
        str(catalog),
        "-p",
        "side",
        "--profiles",
        str(parquet),
        "--profile-id",
        profile_id,
        "--now",
        NOW,
        "--json",
    ]


def test_decide_reads_a_parquet_profile_as_the_batch_does(tmp_path: Path) -> None:
    want = engine_decides(make_plan(), meant())
    runner = CliRunner()
    for row in ODD:
        result = runner.invoke(app, _args(tmp_path, str(row["id"])))
        assert result.exit_code == 0, result.output
        assert _offers(result.output) == want[str(row["id"])], row


@pytest.mark.slow
@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "America/New_York"])
def test_decide_reads_timestamps_as_utc_in_any_time_zone(tmp_path: Path, zone: str) -> None:
    """In a process whose zone is not UTC (DuckDB's default zone is the host's)."""
    want = engine_decides(make_plan(), meant())
    for profile_id in ("L", "M", "O", "P"):
        run = subprocess.run(
            [sys.executable, "-m", "overture.cli", *_args(tmp_path, profile_id)],
            capture_output=True,
            text=True,
            env={**os.environ, "TZ": zone, "COLUMNS": "200"},
            timeout=120,
            check=False,
        )
        assert run.returncode == 0, run.stderr + run.stdout
        assert _offers(run.stdout) == want[profile_id], (profile_id, run.stdout)
