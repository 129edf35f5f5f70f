"""The demo catalog is realistic and its population deterministic."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

from overture.catalog import CappingPolicy, Scopes, SuppressionPolicy, load_catalog
from overture.demo import CATALOG_PATH
from overture.demo import profiles as demo
from overture.engine import DecisionRequest, build_plan
from overture.rules import Schema, compile_rule
from tests.demo import DEMO_AS_OF

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
    table = demo.generate(25_000, as_of=DEMO_AS_OF)
    assert table.num_rows == 25_000
    assert table.slice(20_500, 1).to_pylist()[0] == demo.profile("C0020501", as_of=DEMO_AS_OF)
    assert demo.generate(3, as_of=DEMO_AS_OF).to_pylist() == table.slice(0, 3).to_pylist()
    assert demo.generate(3, seed=8, as_of=DEMO_AS_OF) != demo.generate(3, as_of=DEMO_AS_OF)


def test_two_generations_on_the_same_day_are_identical() -> None:
    day = demo.today()
    first, second = demo.generate(12_000), demo.generate(12_000)
    assert first.equals(second) or demo.today() != day  # (unless midnight came in between)
    assert demo.generate(12_000, as_of=day).equals(demo.generate(12_000, as_of=day))
    assert demo.profile("C0011042", as_of=day) == first.slice(11_041, 1).to_pylist()[0]


def test_another_day_shifts_the_dates_by_whole_days_and_nothing_else() -> None:
    dates = ("customer_since", "last_login")
    week_later = DEMO_AS_OF + dt.timedelta(days=7)
    before = demo.generate(2_000, as_of=DEMO_AS_OF).to_pylist()
    after = demo.generate(2_000, as_of=week_later).to_pylist()
    for a, b in zip(before, after, strict=True):
        assert {k: v for k, v in a.items() if k not in dates} == {
            k: v for k, v in b.items() if k not in dates
        }
        assert b["customer_since"] - a["customer_since"] == dt.timedelta(days=7)
        assert b["last_login"] - a["last_login"] == dt.timedelta(days=7)
        assert a["customer_since"] <= DEMO_AS_OF and a["last_login"] < _midnight(DEMO_AS_OF)


def test_a_demo_loaded_today_has_digital_first_customers() -> None:
    """The demo does not age: generated today (the default), its recent app users are in
    the digital_first segment now (days_since(last_login) <= 14), whatever the date."""
    catalog = load_catalog(CATALOG_PATH)
    segment = next(s for s in catalog.segments if s.name == "digital_first")
    rule = compile_rule(segment.rule, Schema(profile=dict(catalog.audiences[0].fields)))
    rows = demo.generate(2_000).to_pylist()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    assert all(r["last_login"] < now for r in rows)  # nobody logs in from the future
    members = sum(rule.test(row, now=now) for row in rows)
    assert 2_000 * 0.2 < members < 2_000 * 0.8, members  # a real segment, not everyone


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time())


def test_every_placement_serves_real_offers_to_the_population() -> None:
    plan = build_plan(load_catalog(CATALOG_PATH), validated=True)
    placements = list(plan.placements)
    shown: Counter[str] = Counter()
    fallback = 0
    for row in demo.generate(400, as_of=DEMO_AS_OF).to_pylist():
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
