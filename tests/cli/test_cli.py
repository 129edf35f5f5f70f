"""The `overture` command, run as a user would (through Typer's runner, in-process)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import msgspec
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from overture.cli import app
from overture.demo import CATALOG_PATH
from overture.demo import profiles as demo
from overture.runtime.schemas import DecisionOut
from tests.demo import DEMO_AS_OF
from tests.deployed import Deployed

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_init_validate_decide_on_the_demo(tmp_path: Path) -> None:
    folder = tmp_path / "bank"
    code, output = _run("init", str(folder))
    assert code == 0 and "Wrote the demo catalog" in output
    assert _run("init", str(folder))[0] == 1  # refuses to overwrite without --force
    code, output = _run("validate", str(folder))
    assert code == 0 and "is valid: 36 offers, 8 placements" in output
    code, output = _run(
        "decide",
        str(folder),
        "-p",
        "web_home_hero",
        "--profile-id",
        "C0000042",
        "--now",
        "2026-11-23T10:00:00",
        "--explain",
    )
    assert code == 0, output
    assert "web_home_hero" in output and "why, on web_home_hero" in output
    assert "APP-DOWNLOAD" in output and "selected" in output


def test_decide_as_json_with_inline_profile_and_context() -> None:
    code, output = _run(
        "decide",
        "examples/bank",
        "-p",
        "cc_next_best_action",
        "-p",
        "app_home_card",
        "-n",
        "2",
        "--profile",
        json.dumps(
            {
                "customer_id": "X1",
                "age": 40,
                "products": ["mortgage"],
                "employment": "employed",
                "first_name": "Ann",
            }
        ),
        "--context",
        '{"intent": "mortgage"}',
        "--now",
        "2026-11-23T10:00:00",
        "--json",
    )
    assert code == 0, output
    decision = json.loads(output)
    assert decision["profile_id"] == "X1"
    first = decision["placements"][0]["offers"][0]
    assert first["offer"] == "MTG-REMORTGAGE"  # weight 3 when calling about a mortgage
    assert len(decision["placements"][1]["offers"]) <= 2
    assert decision["environment"] is None and decision["recorded"] is False


def test_validate_reports_errors_and_exits_non_zero(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "audiences:\n  - {name: c, id_field: id, fields: {id: string, age: int}}\n"
        "offers:\n  - {code: A, name: a, category: nope, eligibility: 'agee > 1'}\n"
    )
    code, output = _run("validate", str(bad))
    assert code == 1
    assert "offers[0].category: unknown category 'nope'" in output
    assert "offers[0].eligibility:1:1: unknown profile field 'agee' — did you mean 'age'?" in output
    assert f"at {bad}:4" in output
    code, output = _run("validate", str(bad), "--json")
    assert code == 1 and json.loads(output)["ok"] is False
    code, output = _run("decide", str(bad), "-p", "x")
    assert code == 1 and "The catalog has errors" in output


def test_bad_requests_are_explained() -> None:
    code, output = _run(
        "decide", "examples/bank", "-p", "web_home_heroo", "--profile", '{"age": "x"}'
    )
    assert code == 2
    assert "unknown placement 'web_home_heroo'; did you mean 'web_home_hero'?" in output
    assert "profile.age: expected int, got 'x'" in output
    code, output = _run("decide", "examples/bank", "-p", "web_home_hero", "--profile", "[1]")
    assert code == 2 and "must be a JSON object" in output
    code, output = _run("decide", "examples/bank", "-p", "web_home_hero", "--profile-id", "nobody")
    assert code == 2 and "not a demo customer id" in output


def test_demo_profiles_parquet_and_csv_and_lookup(tmp_path: Path) -> None:
    parquet, csv = tmp_path / "p.parquet", tmp_path / "p.csv"
    assert _run("demo-profiles", "--rows", "500", "--out", str(parquet))[0] == 0
    assert _run("demo-profiles", "--rows", "500", "--out", str(csv))[0] == 0
    table = pq.read_table(parquet)
    assert table.num_rows == 500 and table.column("customer_id")[0].as_py() == "C0000001"
    for source in (parquet, csv):
        code, output = _run(
            "decide",
            "examples/bank",
            "-p",
            "app_inbox",
            "--profiles",
            str(source),
            "--profile-id",
            "C0000007",
            "--now",
            "2026-11-23T10:00:00",
            "--json",
        )
        assert code == 0, output
        assert json.loads(output)["profile_id"] == "C0000007"
    same = [
        json.loads(
            _run(
                "decide",
                "examples/bank",
                "-p",
                "app_inbox",
                "--profiles",
                str(s),
                "--profile-id",
                "C0000007",
                "--now",
                "2026-11-23T10:00:00",
                "--json",
            )[1]
        )
        for s in (parquet, csv)
    ]
    assert [p["offer"] for p in same[0]["placements"][0]["offers"]] == [
        p["offer"] for p in same[1]["placements"][0]["offers"]
    ]
    assert _run("demo-profiles", "--out", str(tmp_path / "p.txt"))[0] == 2


def test_demo_profiles_are_dated_from_today_or_as_of(tmp_path: Path) -> None:
    out = tmp_path / "p.parquet"
    code, output = _run("demo-profiles", "--rows", "30", "--out", str(out), "--as-of", "2026-11-20")
    assert code == 0 and "dated as at 2026-11-20" in output, output
    assert pq.read_table(out).to_pylist() == demo.generate(30, as_of=DEMO_AS_OF).to_pylist()
    code, output = _run("demo-profiles", "--rows", "30", "--out", str(out))
    assert code == 0 and "dated as at 20" in output, output
    day = dt.date.fromisoformat(output.split("dated as at ")[1][:10])
    assert pq.read_table(out).to_pylist() == demo.generate(30, as_of=day).to_pylist()
    assert day in (demo.today(), demo.today() - dt.timedelta(days=1))  # (midnight between)
    code, output = _run("demo-profiles", "--out", str(out), "--as-of", "20/11/2026")
    assert code == 2 and "--as-of must be a date like 2026-11-20" in output


def test_decide_dates_a_demo_customer_from_the_day_it_decides_at(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[dt.date | None] = []
    real = demo.profile

    def profile(customer: str, seed: int = 7, as_of: dt.date | None = None) -> dict[str, Any]:
        asked.append(as_of)
        return real(customer, seed, as_of)

    monkeypatch.setattr(demo, "profile", profile)
    base = ("decide", "examples/bank", "-p", "web_home_hero", "--profile-id", "C0000042")
    assert _run(*base, "--now", "2026-11-23T23:30:00-02:00")[0] == 0  # 01:30 UTC the 24th
    assert _run(*base)[0] == 0
    assert asked == [dt.date(2026, 11, 24), None]  # None: today (UTC)


def _shape(value: Any) -> Any:
    """Keys and value types, all the way down (a list: the shapes of its items)."""
    if isinstance(value, dict):
        return {key: _shape(v) for key, v in sorted(value.items())}
    if isinstance(value, list):
        return sorted({json.dumps(_shape(v), sort_keys=True) for v in value})
    return type(value).__name__


def test_decide_json_is_the_runtime_apis_answer(demo: Deployed) -> None:
    """`overture decide --json` and POST /v1/decisions answer the same request in one shape:
    the same keys and types everywhere (offers, traces, rule errors), the same offers."""
    profile = {
        "customer_id": "X1",
        "age": 40,
        "income": 52_000,
        "products": ["mortgage"],
        "employment": "employed",
        "first_name": "Ann",
    }
    context = {"intent": "mortgage"}
    at = "2026-11-23T10:00:00"
    code, output = _run(
        "decide",
        str(CATALOG_PATH),
        "-p",
        "cc_next_best_action",
        "-p",
        "web_home_hero",
        "--profile",
        json.dumps(profile),
        "--context",
        json.dumps(context),
        "--now",
        at,
        "--explain",
        "--json",
    )
    assert code == 0, output
    cli = json.loads(output)
    with demo.client(accept_decision_times=True) as api:
        answer = api.post(
            "/v1/decisions",
            json={
                "placements": [
                    {"placement": "cc_next_best_action"},
                    {"placement": "web_home_hero"},
                ],
                "profile": profile,
                "context": context,
                "at": at + "Z",
                "explain": True,
                "record": False,
            },
        )
    assert answer.status_code == 200, answer.text
    http = answer.json()
    assert http["environment"] == "staging" and isinstance(http["deployment"], int)
    assert cli["environment"] is None and cli["deployment"] is None  # a folder, not deployed
    for decision in (cli, http):
        decision["environment"], decision["deployment"] = "staging", 1
    assert _shape(cli) == _shape(http)
    msgspec.convert(cli, DecisionOut)  # the documented answer, strictly
    assert all(p["offers"] for p in cli["placements"]) and "explain" in cli["placements"][0]

    def offers(decision: dict[str, Any]) -> list[list[tuple[str, int, bool]]]:
        return [
            [(o["offer"], o["rank"], o["fallback"]) for o in p["offers"]]
            for p in decision["placements"]
        ]

    assert offers(cli) == offers(http)
    assert cli["decided_at"] == http["decided_at"] == at + "Z"
