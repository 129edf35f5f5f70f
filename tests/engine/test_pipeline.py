"""Each step of the decision pipeline (DESIGN.md §4)."""

from __future__ import annotations

import datetime as dt

import pytest

from overture.engine import Learner, RequestError
from tests.engine.helpers import NOW, codes, decide, make_plan, offer

# -- 1. candidates ------------------------------------------------------------------------


def test_only_offers_valid_on_the_placement_and_active_now() -> None:
    plan = make_plan(
        offers=[
            offer("ON-SIDE-ONLY", placements=("side",)),
            offer("FUTURE", start=NOW + dt.timedelta(days=1)),
            offer("ENDED", end=(NOW - dt.timedelta(hours=1)).isoformat()),
            offer("INACTIVE", status="inactive"),
            offer("OK", end=NOW.date()),  # an end date includes its whole day
        ]
    )
    decision = decide(plan, "hero", explain=True)
    assert codes(decision) == ["OK"]
    why = {t.offer_code: (t.step, t.reason) for t in decision.placements[0].explain or ()}
    assert why["FUTURE"][0] == "candidates" and "not active now" in why["FUTURE"][1]
    assert why["ENDED"][0] == "candidates"  # the plan was built before it ended
    assert "ON-SIDE-ONLY" not in why and "INACTIVE" not in why  # never candidates here


def test_category_validity_restricts_its_offers() -> None:
    categories = [
        {"name": "root", "end": (NOW - dt.timedelta(days=2)).date().isoformat()},
        {"name": "a", "parent": "root"},
        {"name": "b"},
    ]
    plan = make_plan(categories=categories, offers=[offer("A1"), offer("B1", "b")])
    assert codes(decide(plan, "side")) == ["B1"]


def test_requests_can_restrict_to_categories_and_themes() -> None:
    categories = [
        {"name": "root"},
        {"name": "a", "parent": "root", "themes": ["green"]},
        {"name": "b", "parent": "root"},
    ]
    plan = make_plan(
        categories=categories,
        offers=[offer("A1"), offer("B1", "b"), offer("B2", "b", themes=["green"], value=1)],
    )
    assert codes(decide(plan, "side", categories=["b"])) == ["B2", "B1"]
    assert codes(decide(plan, "side", themes=["green"])) == ["B2", "A1"]  # inherited theme
    with pytest.raises(RequestError, match="unknown category 'c'"):
        decide(plan, "side", categories=["c"])


# -- 2. eligibility -----------------------------------------------------------------------


def test_category_chain_and_offer_rules_all_apply() -> None:
    categories = [
        {"name": "root", "eligibility": "age >= 18"},
        {"name": "a", "parent": "root", "eligibility": "vip"},
        {"name": "b"},
    ]
    plan = make_plan(categories=categories, offers=[offer("A1", eligibility="income > 1000")])
    ok = {"age": 30, "vip": True, "income": 2000.0}
    assert codes(decide(plan, "hero", profile=ok)) == ["A1"]
    for bad in ({**ok, "age": 17}, {**ok, "vip": False}, {**ok, "income": 10.0}, {}):
        decision = decide(plan, "hero", profile=bad, explain=True)
        assert codes(decision) == []
        (trace,) = decision.placements[0].explain or ()
        assert trace.step == "eligibility"


def test_a_date_moved_past_9999_makes_its_offer_ineligible_without_an_error() -> None:
    # this rule used to raise OverflowError in Python (and give year 11213 in SQL); a date
    # past 9999 is null now in every path, so the offer is simply not eligible
    plan = make_plan(
        audiences=[
            {"name": "customer", "id_field": "id", "fields": {"id": "string", "born": "date"}}
        ],
        offers=[
            offer("RAISES", weight=2, eligibility="add_days(born, 3000000) > today()"),
            offer("SAFE"),
        ],
    )
    decision = decide(plan, "hero", profile={"born": "9000-01-01"})
    assert codes(decision) == ["SAFE"]
    assert decision.rule_errors == ()


def test_treatment_rules_target_offers_to_segments() -> None:
    plan = make_plan(
        offers=[offer("T1", weight=2), offer("T2", "b"), offer("FREE")],
        segments=[{"name": "adults", "rule": "age >= 18"}, {"name": "vips", "rule": "vip"}],
        treatment_rules=[
            {"name": "t-adults", "segment": "adults", "offers": ["T1"], "score": 40},
            {"name": "t-vip", "segment": "vips", "offers": ["T1"], "score": 70},
            {"name": "t-b", "segment": "vips", "category": "b", "score": 90, "zone": "side"},
        ],
    )
    side = {
        p.offer_code: p.score
        for p in decide(plan, "side", profile={"age": 30, "vip": True}).propositions
    }
    assert side == {"T1": 140.0, "T2": 90.0, "FREE": 50.0}  # the higher treatment score wins
    side = {p.offer_code: p.score for p in decide(plan, "side", profile={"age": 30}).propositions}
    assert side == {"T1": 80.0, "FREE": 50.0}  # T2 is only for vips
    decision = decide(plan, "mail", profile={"age": 30, "vip": True}, explain=True)
    assert "T2" not in codes(decision)  # its rule is limited to the side zone
    reasons = {t.offer_code: t.reason for t in decision.placements[0].explain or ()}
    assert reasons["T2"].startswith("no treatment rule targets it here")


def test_a_treatment_score_or_weight_of_zero_is_not_eligible() -> None:
    """Found by reading the ranking loop: an offer scored as its weight × its treatment
    rules' score was proposed with a score of 0, which explain (and the batch) call not
    eligible."""
    plan = make_plan(
        offers=[offer("T0"), offer("W0", weight=0), offer("FREE")],
        segments=[{"name": "all", "rule": "age >= 0"}],
        treatment_rules=[
            {"name": "zero", "segment": "all", "offers": ["T0"], "score": 0},
            {"name": "some", "segment": "all", "offers": ["W0"], "score": 10},
        ],
    )
    assert codes(decide(plan, "side", profile={"age": 30})) == ["FREE"]
    decision = decide(plan, "side", profile={"age": 30}, explain=True)
    assert codes(decision) == ["FREE"]
    reasons = {t.offer_code: t.reason for t in decision.placements[0].explain or ()}
    assert reasons["T0"] == "its score is 0"
    assert reasons["W0"] == "its weight is 0: not eligible"


def test_treatment_eligibility_and_score_expressions() -> None:
    plan = make_plan(
        offers=[offer("T1")],
        segments=[{"name": "all", "rule": "age >= 0"}],
        treatment_rules=[
            {
                "name": "t",
                "segment": "all",
                "offers": ["T1"],
                "score": 50,
                "eligibility": "context.intent != 'complaint'",
                "score_expression": "treatment.score * (2 if vip else 1)",
            }
        ],
    )
    assert [
        p.score
        for p in decide(
            plan, "hero", profile={"age": 1, "vip": True}, context={"intent": "x"}
        ).propositions
    ] == [100.0]
    assert codes(decide(plan, "hero", profile={"age": 1}, context={"intent": "complaint"})) == []


# -- 4. score -----------------------------------------------------------------------------


def test_highest_applicable_weight_wins_and_zero_is_ineligible() -> None:
    weights = [
        {"value": 5, "placements": ["side"]},
        {"value": 4, "rule": "vip"},
        {"value": 3, "start": (NOW + dt.timedelta(days=1)).isoformat()},
        {"value": "income / 1000"},
    ]
    plan = make_plan(offers=[offer("W", weights=weights), offer("ZERO", weight=0)])
    score = {
        pd.placement: pd.propositions[0].score if pd.propositions else None
        for pd in decide(plan, "hero", "side", profile={"income": 2000.0}).placements
    }
    assert score == {"hero": 100.0, "side": None}  # W went to hero: no duplicate on side
    assert decide(plan, "side", profile={"income": 2000.0}).propositions[0].score == 250.0
    assert (
        decide(plan, "hero", profile={"income": 2000.0, "vip": True}).propositions[0].score == 200.0
    )
    decision = decide(plan, "hero", explain=True)  # income unknown: the expression is null
    assert codes(decision) == []
    reasons = {t.offer_code: (t.step, t.reason) for t in decision.placements[0].explain or ()}
    assert reasons["ZERO"] == ("score", "its weight is 0: not eligible")
    assert reasons["W"][0] == "score"


def test_category_multipliers_apply_during_their_period() -> None:
    categories = [
        {
            "name": "root",
            "multipliers": [
                {
                    "value": 2,
                    "start": (NOW - dt.timedelta(days=1)).isoformat(),
                    "end": (NOW + dt.timedelta(days=1)).isoformat(),
                },
                {"value": 10, "start": (NOW + dt.timedelta(days=5)).isoformat()},
            ],
        },
        {"name": "a", "parent": "root"},
        {"name": "b"},
    ]
    plan = make_plan(categories=categories, offers=[offer("A1")])
    assert decide(plan, "hero").propositions[0].score == 100.0
    assert decide(plan, "hero", now=NOW + dt.timedelta(days=6)).propositions[0].score == 500.0


def test_a_learner_multiplies_the_score() -> None:
    class Prefers:
        def factor(
            self, offer_code: str, placement: str, profile: object, context: object
        ) -> float:
            return 3.0 if offer_code == "LOW" else 1.0

    learner: Learner = Prefers()
    plan = make_plan(offers=[offer("HIGH", weight=2), offer("LOW")])
    from overture.engine import DecisionRequest

    decision = plan.decide(DecisionRequest.for_placements(["hero"], now=NOW), None, learner)
    assert codes(decision) == ["LOW"] and decision.propositions[0].score == 150.0


# -- 5. arbitration -----------------------------------------------------------------------


def test_top_n_by_score_then_value_then_code() -> None:
    plan = make_plan(
        offers=[
            offer("C", value=1),
            offer("B", value=2),
            offer("A", value=1),
            offer("TOP", weight=3),
        ]
    )
    assert codes(decide(plan, "side")) == ["TOP", "B", "A"]
    assert codes(decide(plan, ("side", 2))) == ["TOP", "B"]
    assert codes(decide(plan, ("side", 50))) == ["TOP", "B", "A"]  # clamped to max_offers


def test_no_duplicates_across_the_placements_of_one_request_in_order() -> None:
    plan = make_plan(offers=[offer("A", weight=3), offer("B", weight=2), offer("C")])
    decision = decide(plan, "hero", "side")
    assert codes(decision, "hero") == ["A"] and codes(decision, "side") == ["B", "C"]
    decision = decide(plan, "side", "hero")
    assert codes(decision, "side") == ["A", "B", "C"] and codes(decision, "hero") == []


def test_cap_per_category() -> None:
    placements = [
        {
            "name": "side",
            "channel": "web",
            "max_offers": 3,
            "max_per_category": 1,
            "fields": {"title": {"required": True}},
        }
    ]
    plan = make_plan(
        placements=placements,
        offers=[
            offer("A1", weight=5, placements=("side",)),
            offer("A2", weight=4, placements=("side",)),
            offer("B1", "b", weight=1, placements=("side",)),
        ],
    )
    assert codes(decide(plan, "side")) == ["A1", "B1"]


def test_explain_and_plain_decisions_choose_the_same_offers() -> None:
    plan = make_plan(
        offers=[
            offer(
                f"O{i}",
                "a" if i % 2 else "b",
                weight=1 + i % 4,
                value=i,
                eligibility=f"age > {i * 3}",
            )
            for i in range(20)
        ],
    )
    for age in range(0, 70, 7):
        plain = decide(plan, "side", "hero", "mail", profile={"age": age})
        explained = decide(plan, "side", "hero", "mail", profile={"age": age}, explain=True)
        assert codes(plain) == codes(explained)
        traces = [t for pd in explained.placements for t in pd.explain or ()]
        assert {t.offer_code for t in traces if t.selected} == set(codes(explained))


# -- 6. fallback and default content ------------------------------------------------------


def test_fallback_offers_fill_free_slots_but_respect_eligibility() -> None:
    placements = [
        {
            "name": "side",
            "channel": "web",
            "max_offers": 3,
            "fields": {"title": {"required": True}},
            "fallback_offers": ["FB1", "FB2"],
        }
    ]
    categories = [
        {"name": "root"},
        {"name": "a", "parent": "root"},
        {"name": "b"},
        {"name": "services", "fallback": True},
    ]
    segments = [{"name": "nobody", "rule": "age > 200"}]
    plan = make_plan(
        placements=placements,
        categories=categories,
        segments=segments,
        offers=[
            offer("REAL", placements=("side",)),
            offer("FB1", placements=("side",), weight=0),  # never ranked, still a fallback
            offer("FB2", placements=("side",), eligibility="vip"),
            offer("SVC", "services", placements=("side",)),
        ],
        treatment_rules=[{"name": "t", "segment": "nobody", "offers": ["SVC"]}],
    )
    decision = decide(plan, "side", profile={"vip": False})
    assert [(p.offer_code, p.fallback) for p in decision.propositions] == [
        ("REAL", False),
        ("FB1", True),
        ("SVC", True),
    ]


def test_default_content_when_nothing_at_all() -> None:
    plan = make_plan(offers=[offer("A1", eligibility="age > 100")])
    (pd,) = decide(plan, "hero", profile={"age": 3}).placements
    assert pd.propositions == () and pd.default_content == {"title": "Welcome"}


# -- 7. content and tracking --------------------------------------------------------------


def test_content_is_rendered_in_a_sandbox_and_escaped_for_html() -> None:
    placements = [
        {
            "name": "hero",
            "channel": "web",
            "render": "html",
            "fields": {"title": {"required": True}},
        },
        {"name": "mail", "channel": "email", "fields": {"title": {"required": True}}},
    ]
    plan = make_plan(
        placements=placements,
        offers=[
            offer(
                "A1",
                placements=("hero",),
                content={"title": "Hi {{ profile.first_name or 'you' }}"},
            ),
            offer("A2", placements=("mail",), content={"title": "Hi {{ profile.first_name }}"}),
        ],
    )
    evil = {"first_name": "<script>x</script>"}
    assert (
        decide(plan, "hero", profile=evil).propositions[0].content["title"]
        == "Hi &lt;script&gt;x&lt;/script&gt;"
    )
    assert (
        decide(plan, "mail", profile=evil).propositions[0].content["title"]
        == "Hi <script>x</script>"
    )
    assert decide(plan, "hero").propositions[0].content["title"] == "Hi you"


def test_a_template_that_fails_at_run_time_drops_its_offer() -> None:
    plan = make_plan(
        offers=[
            offer("BAD", weight=2, content={"title": "{{ profile.first_name + 1 }}"}),
            offer("GOOD"),
        ]
    )
    decision = decide(plan, "hero", profile={"first_name": "x"})
    assert codes(decision) == ["GOOD"]
    assert [e.rule for e in decision.rule_errors] == ["content"]


def test_tracking_codes_are_unique() -> None:
    plan = make_plan(offers=[offer(f"O{i}") for i in range(3)])
    seen = {p.tracking_code for _ in range(200) for p in decide(plan, "side", "hero").propositions}
    assert len(seen) == 600


def test_bad_requests_are_refused_with_every_problem() -> None:
    plan = make_plan(offers=[offer("A1")])
    with pytest.raises(RequestError) as caught:
        decide(
            plan,
            "heroo",
            ("side", 0),
            profile={"age": "old", "vip": "maybe"},
            context={"intent": 3.5},
        )
    assert caught.value.problems == [
        "profile.age: expected int, got 'old'",
        "profile.vip: expected bool, got 'maybe'",
        "context.intent: expected string, got 3.5",
        "unknown placement 'heroo'; did you mean 'hero'?",
        "count for 'side' must be at least 1, not 0",
    ]


def test_profile_values_are_coerced_from_json() -> None:
    plan = make_plan(offers=[offer("A1", eligibility="age >= 18 and vip and 'x' in products")])
    profile = {"age": "30", "vip": "true", "products": ["x"], "unknown": object()}
    assert codes(decide(plan, "hero", profile=profile)) == ["A1"]
