"""The batch benchmark runs (tiny size; no timing is asserted: figures are for `make bench`)."""

from __future__ import annotations

import pytest

from benchmarks import batch


@pytest.mark.slow
def test_batch_benchmark_runs_and_agrees_with_the_engine() -> None:
    result = batch.main(
        profiles=1500, offers=40, sample=300, n=3, threads=1, memory_limit="1GB", say=lambda _: None
    )
    run = result["batch"]
    assert run.recipients == 1500 and run.propositions > 0
    assert run.allocation.refusals > 0 and result["ran_out"] == [batch.POPULAR]
    assert result["engine_us"] > 0 and result["ratio"] > 0
    # batch and engine differ only where the inventory ran out
    assert result["agree"] + result["differ"] == 300
    assert result["explained"] == result["differ"]
    assert result["history_changes"] > 0  # capping bites
