"""A decision leaves no reference cycles behind: everything it builds is freed as soon as
its answer is, without the garbage collector. Each decision's cycle (its state held its
segment flags, which held the state) once left ~20 objects a decision for the collector,
whose young passes then stopped the runtime's event loop for ~10 ms every few hundred
decisions (docs/runtime.md, "Speed")."""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Iterator

import pytest

from overture.catalog import load_catalog
from overture.demo import CATALOG_PATH
from overture.engine import DecisionRequest, build_plan
from overture.engine.history import InMemoryHistory

PLAN = build_plan(load_catalog(CATALOG_PATH), validated=True)
PROFILE = {
    "customer_id": "C1",
    "age": 34,
    "income": 85_000,
    "products": ["current_account"],
    "customer_since": "2019-04-01",
}


@pytest.fixture
def collector_off() -> Iterator[list[object]]:
    """The objects only the collector could free, of what the test does meanwhile."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


@pytest.mark.parametrize("explain", [False, True])
def test_a_decision_is_freed_without_the_garbage_collector(
    collector_off: list[object], explain: bool
) -> None:
    history = InMemoryHistory()
    now = dt.datetime(2026, 11, 23, 12)
    for _ in range(20):
        request = DecisionRequest.for_placements(
            ["web_home_hero", "web_account_sidebar"],
            profile=PROFILE,
            profile_id="C1",
            now=now,
            explain=explain,
            segments=True,
        )
        decision = PLAN.decide(request, history)
        assert decision.propositions  # (the demo proposes offers to this profile)
    del decision, request
    gc.collect()
    left = sorted({type(o).__name__ for o in collector_off})
    assert left == [], f"decisions left reference cycles of: {', '.join(left)}"
