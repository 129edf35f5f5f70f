"""The `overture` command, run as a user would (through Typer's runner, in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from overture.cli import app

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
    first = decision["placements"][0]["propositions"][0]
    assert first["offer_code"] == "MTG-REMORTGAGE"  # weight 3 when calling about a mortgage
    assert len(decision["placements"][1]["propositions"]) <= 2


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
    assert [p["offer_code"] for p in same[0]["placements"][0]["propositions"]] == [
        p["offer_code"] for p in same[1]["placements"][0]["propositions"]
    ]
    assert _run("demo-profiles", "--out", str(tmp_path / "p.txt"))[0] == 2
