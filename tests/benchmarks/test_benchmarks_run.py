"""The benchmarks run (tiny sizes; no timing is asserted: figures are for `make bench`)."""

from __future__ import annotations

import pytest

from benchmarks import engine


@pytest.mark.slow
def test_engine_benchmark_runs_and_reports_both_engines() -> None:
    result = engine.main(seconds=0.2, offers=120, placements=6, pin=False)
    assert result["compiled"]["decisions"] > 0 and result["interpreted"]["decisions"] > 0
    assert 15 <= result["candidates_per_placement"] <= 25
    assert result["policies"] == 10


def test_rule_benchmark_runs() -> None:
    from benchmarks import rules

    result = rules.main(seconds=0.05)
    assert result["compiled"] > 0 and result["interpreted"] > 0


@pytest.mark.slow
def test_design_benchmark_runs() -> None:
    from benchmarks import design

    result = design.main(rounds=2)
    figures = result["SQLite"]
    assert set(figures) >= {"GET /auth/me (baseline)", "deploy staging", "GET an offer"}
    assert all(ms > 0 for ms in figures.values())


@pytest.mark.slow
def test_in_process_runtime_benchmark_runs_and_every_request_is_answered() -> None:
    import asyncio

    from benchmarks import inprocess

    for kind in ([], ["--events"]):
        options = inprocess.parser().parse_args(
            ["--rounds", "1", "--decisions", "64", "--clients", "8", "--customers", "200", *kind]
        )
        result = asyncio.run(inprocess.measure(options))
        assert set(result["statuses"]) <= {200, 202} and sum(result["statuses"].values()) == 64
        assert result["cpu_us"][0] > 0


@pytest.mark.slow
def test_in_process_pair_measures_one_and_two_processes() -> None:
    """Two processes on one SQLite file, as `--workers 2`: each answers every request (a
    failed process fails the run) and the three figures are reported."""
    from benchmarks import inprocess

    options = inprocess.parser().parse_args(
        ["--pair", "--rounds", "1", "--decisions", "64", "--clients", "8", "--customers", "200"]
    )
    result = inprocess.pair(options)
    assert set(result) == {"alone", "own_files", "one_file"}
    assert all(us > 0 for us in result.values())


@pytest.mark.slow
def test_history_reads_benchmark_runs() -> None:
    from benchmarks import history_reads

    result = history_reads.measure(customers=200, rounds=1, profiles=50)
    assert result["profiles"] > 0 and result["entries"] > 0
    assert all(v > 0 for k, v in result.items() if k.startswith(("statement", "moved", "not")))
