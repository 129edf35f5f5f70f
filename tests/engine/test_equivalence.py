"""On a generated catalog with history: compiled and interpreted rules, and decisions with
and without explain, choose exactly the same offers."""

from __future__ import annotations

import datetime as dt

import pytest

from benchmarks.generated import catalog, history, profiles
from overture.engine import DecisionPlan, DecisionRequest, InMemoryHistory, build_plan

NOW = dt.datetime(2026, 11, 23, 12, 0)


@pytest.fixture(scope="module")
def setup() -> tuple[DecisionPlan, DecisionPlan, list[dict[str, object]], InMemoryHistory]:
    cat = catalog(offers=300, placements=6, seed=5)
    people = profiles(150, NOW, seed=6)
    return (
        build_plan(cat, NOW),
        build_plan(cat, NOW, compiler="interpreter", validated=True),
        people,
        history(people, cat, NOW, seed=7),
    )


def test_same_offers_every_way(
    setup: tuple[DecisionPlan, DecisionPlan, list[dict[str, object]], InMemoryHistory],
) -> None:
    compiled, interpreted, people, hist = setup
    placements = list(compiled.placements)
    for i, person in enumerate(people):
        asked: list[str | tuple[str, int]] = [placements[i % 6], (placements[(i + 1) % 6], 2)]
        context = {"intent": "buy" if i % 3 == 0 else "browse"}
        answers = []
        for plan in (compiled, interpreted):
            for explain in (False, True):
                decision = plan.decide(
                    DecisionRequest.for_placements(
                        asked, profile=person, context=context, now=NOW, explain=explain
                    ),
                    hist,
                )
                answers.append(
                    [
                        (p.placement, p.offer_code, round(p.score, 9), p.fallback)
                        for p in decision.propositions
                    ]
                )
        assert all(a == answers[0] for a in answers), (person["id"], answers)
