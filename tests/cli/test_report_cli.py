"""`overture report` and the design API's reports: the same figures as the history
module computes, as a table, JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from overture.cli import app
from overture.design import access
from overture.design.catalog import Actor
from overture.history import reports
from overture.history.reports import Period
from tests.deployed import Deployed
from tests.design.api import PASSWORD
from tests.design.server import live_server


@pytest.fixture
def cli(demo: Deployed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    with demo.db.session() as s:
        access.create_operator(s, Actor("setup"), "vic", PASSWORD, ["viewer"])
    with demo.client() as api:
        for i in range(30):
            answer = api.post(
                "/v1/decisions",
                json={
                    "profile_id": f"C{i + 1:07d}",
                    "placements": [{"placement": "web_home_hero"}],
                },
            ).json()
            for offer in answer["placements"][0]["offers"]:
                api.post(
                    "/v1/events",
                    json={"name": "presented", "tracking_code": offer["tracking_code"]},
                )
                if i % 3 == 0:
                    api.post(
                        "/v1/events",
                        json={"name": "accepted", "tracking_code": offer["tracking_code"]},
                    )
    monkeypatch.setenv("OVERTURE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("OVERTURE_TOKEN", raising=False)
    with live_server(demo.db) as url:
        monkeypatch.setenv("OVERTURE_URL", url)
        runner = CliRunner(env={"COLUMNS": "200"})
        result = runner.invoke(app, ["login", "--user", "vic", "--password-stdin"], input=PASSWORD)
        assert result.exit_code == 0, result.output
        yield runner


def test_the_report_command_prints_what_the_history_module_computes(
    cli: CliRunner, demo: Deployed
) -> None:
    with demo.db.engine.connect() as conn:
        expected = reports.report(conn, "staging", "offer", Period.last(30))
    as_json = cli.invoke(app, ["report", "--env", "staging", "--by", "offer", "--json"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["total"]["propositions"] == expected.total.propositions == 30
    assert [r["key"] for r in data["rows"]] == [r.key for r in expected.rows]
    assert data["total"]["rate"] == pytest.approx(expected.total.rate)

    as_csv = cli.invoke(app, ["report", "--env", "staging", "--by", "placement", "--csv"])
    rows = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert rows[-1]["placement"] == "total" and rows[-1]["propositions"] == "30"

    table = cli.invoke(app, ["report", "--env", "staging", "--by", "channel"])
    assert table.exit_code == 0 and "web" in table.output, table.output
    assert "pres." in table.output, table.output

    wrong = cli.invoke(app, ["report", "--env", "staging", "--by", "colour"])
    assert wrong.exit_code == 1 and "report by" in wrong.output
    unknown = cli.invoke(app, ["report", "--env", "nowhere"])
    assert unknown.exit_code == 1 and "no environment 'nowhere'" in unknown.output
