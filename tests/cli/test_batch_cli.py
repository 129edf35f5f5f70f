"""`overture simulate` and `overture batch`, as a user types
them: a report and figures from a catalog folder, propositions recorded on an environment,
and clear errors for wrong input."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from overture.cli import app
from overture.store.history import PropositionRow
from tests.deployed import Deployed

runner = CliRunner(env={"COLUMNS": "200"})


def overture(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_simulate_a_catalog_folder(tmp_path: Path) -> None:
    people = str(tmp_path / "people.csv")
    code, output = overture(
        "demo-profiles", "--rows", "3000", "--out", people, "--as-of", "2026-11-20"
    )
    assert code == 0, output  # a CSV: products joined with ';'; dated for --at below
    assert overture("init", str(tmp_path / "cat"))[0] == 0
    report, figures = tmp_path / "report.html", tmp_path / "figures.json"
    code, output = overture(
        "simulate",
        "--catalog",
        str(tmp_path / "cat"),
        "--population",
        people,
        "--placement",
        "email_newsletter_slot",
        "-n",
        "3",
        "--at",
        "2026-11-23T10:00:00",
        "--report",
        str(report),
        "--json",
        str(figures),
    )
    assert code == 0, output
    assert "of 3000 recipients" in output and "simulated: nothing recorded" in output
    data = json.loads(figures.read_text())
    assert data["recipients"] == 3000 and data["at"] == "2026-11-23T10:00:00"
    assert data["propositions"] == sum(o["propositions"] for o in data["offers"])
    assert "chart-funnel" in report.read_text()


def test_batch_records_and_writes_the_propositions(demo: Deployed, tmp_path: Path) -> None:
    people = str(tmp_path / "people.parquet")
    assert overture("demo-profiles", "--rows", "500", "--out", people)[0] == 0
    out = tmp_path / "props.parquet"
    code, output = overture(
        "batch",
        "--env",
        "staging",
        "--database",
        demo.db.url,
        "--population",
        people,
        "-p",
        "cc_next_best_action",
        "--out",
        str(out),
    )
    assert code == 0, output
    assert "recorded in the history" in output
    table = pq.read_table(out)
    assert {"tracking_code", "content_title", "content_script"} <= set(table.column_names)
    with demo.db.session() as s:
        assert s.scalar(select(func.count()).select_from(PropositionRow)) == table.num_rows > 0


def test_wrong_input_is_explained(demo: Deployed, tmp_path: Path) -> None:
    base = ["simulate", "--env", "staging", "--database", demo.db.url]
    code, output = overture(
        *base, "--population", str(tmp_path / "none.parquet"), "-p", "web_home_hero"
    )
    assert code == 2 and "cannot read" in output
    people = str(tmp_path / "people.parquet")
    overture("demo-profiles", "--rows", "10", "--out", people)
    code, output = overture(*base, "--population", people, "-p", "web_homepage")
    assert code == 2 and "unknown placement 'web_homepage'" in output
    code, output = overture(*base, "--population", str(tmp_path / "p.txt"), "-p", "web_home_hero")
    assert code == 2 and "give a .parquet or .csv file" in output
    code, output = overture("simulate", "--population", people, "-p", "web_home_hero")
    assert code == 2 and "give --env E" in output
    code, output = overture(
        "batch", "--env", "nowhere", "--database", demo.db.url, "--population", people, "-p", "x"
    )
    assert code == 1 and "no environment 'nowhere'" in output


@pytest.mark.slow
def test_ctrl_c_stops_a_run_cleanly(tmp_path: Path) -> None:
    """SIGINT in the middle of a long run (DuckDB interrupts its query): exit 130, a
    one-line message, no traceback."""
    import signal
    import subprocess
    import sys
    import time

    from overture.demo import profiles

    people = tmp_path / "people.parquet"
    profiles.write(profiles.generate(500_000), people)
    assert overture("init", str(tmp_path / "cat"))[0] == 0
    command = [sys.executable, "-m", "overture.cli", "simulate", "--catalog", str(tmp_path / "cat")]
    command += ["--population", str(people), "-p", "cc_next_best_action", "--report", "r.html"]
    run = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(8)  # past the start (imports, the plan) on a busy machine; the run takes ~40 s
    assert run.poll() is None, "the run ended before it could be interrupted"
    run.send_signal(signal.SIGINT)
    _out, errors = run.communicate(timeout=60)
    assert run.returncode == 130, errors.decode()
    assert "interrupted: nothing was recorded" in errors.decode()
    assert b"Traceback" not in errors
    assert not (tmp_path / "r.html").exists()


def test_ctrl_c_before_the_run_is_as_clean(capsys: pytest.CaptureFixture[str]) -> None:
    """Interrupted while the plan loads or the report's library imports: the same line and
    exit code, not Typer's silent 130."""
    import typer

    from overture.cli.batch import _stopped_cleanly

    with pytest.raises(typer.Exit) as stopped, _stopped_cleanly():
        raise KeyboardInterrupt
    assert stopped.value.exit_code == 130
    assert "interrupted: nothing was recorded" in capsys.readouterr().err
