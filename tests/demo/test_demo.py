"""The demo catalog is realistic and its population deterministic."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

from overture.catalog import CappingPolicy, Scopes, SuppressionPolicy, load_catalog
from overture.demo import CATALOG_PATH
from overture.demo import profiles as demo
from overture.engine import DecisionRequest, build_plan

REPO = Path(__file__).resolve().parents[2]


def test_examples_bank_is_the_packaged_demo() -> None:
    assert (REPO / "examples" / "bank").resolve() == CATALOG_PATH.resolve()


def test_the_demo_catalog_covers_what_the_product_does() -> None:
    c = load_catalog(CATALOG_PATH)
    scopes = Scopes(c)
    assert len(c.offers) >= 30
    assert {ch.name for ch in c.channels} == {"web", "mobile_app", "call_centre", "email"}
    assert len(c.placements) == 8
    assert max(len(scopes.chain(cat.name)) for cat in c.categories) >= 3
    assert len(c.segments) >= 5 and len(c.treatment_rules) >= 5
    assert any(isinstance(p, CappingPolicy) for p in c.policies)
    assert any(isinstance(p, SuppressionPolicy) for p in c.policies)


def test_profiles_are_deterministic_and_addressable() -> None:
    table = demo.generate(25_000)
    assert table.num_rows == 25_000
    assert table.slice(20_500, 1).to_pylist()[0] == demo.profile("C0020501")
    assert demo.generate(3).to_pylist() == demo.generate(25_000).slice(0, 3).to_pylist()
    assert demo.generate(3, seed=8).to_pylist() != demo.generate(3).to_pylist()


def test_every_placement_serves_real_offers_to_the_population() -> None:
    plan = build_plan(load_catalog(CATALOG_PATH), validated=True)
    placements = list(plan.placements)
    shown: Counter[str] = Counter()
    fallback = 0
    for row in demo.generate(400).to_pylist():
        decision = plan.decide(
            DecisionRequest.for_placements(
                placements, profile=row, now=dt.datetime(2026, 11, 23, 10)
            )
        )
        assert not decision.rule_errors
        for p in decision.propositions:
            shown[p.offer_code] += 1
            fallback += p.fallback
    assert len(shown) >= 25  # most offers find someone
    assert fallback < sum(shown.values()) / 5  # fallbacks stay the exception
