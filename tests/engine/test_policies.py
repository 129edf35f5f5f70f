"""Presentation policies: filter, capping, suppression and inventory, read from history."""

from __future__ import annotations

import datetime as dt
from typing import Any

from overture.engine import HistoryEvent, InMemoryHistory
from tests.engine.helpers import NOW, codes, decide, make_plan, offer

CATEGORIES = [{"name": "root"}, {"name": "a", "parent": "root"}, {"name": "b", "parent": "root"}]


def _history(
    *events: tuple[str, str, str, dt.timedelta], profile: str = "p1", channel: str = "web"
) -> InMemoryHistory:
    """Events as (kind, offer, category, how long before NOW)."""
    history = InMemoryHistory()
    for kind, code, category, ago in events:
        history.record(HistoryEvent(profile, kind, code, (category, "root"), channel, NOW - ago))
    return history


def _plan(policy: dict[str, Any], **more: Any) -> Any:
    offers = more.pop("offers", [offer("A1", weight=3), offer("A2", weight=2), offer("B1", "b")])
    return make_plan(policies=[{"name": "pol", **policy}], offers=offers, **more)


def test_filter_keeps_offers_where_its_rule_is_true() -> None:
    plan = _plan({"kind": "filter", "rule": "vip or offer.category != 'a'", "channels": ["web"]})
    assert codes(decide(plan, "side", profile={"vip": False})) == ["B1"]
    assert codes(decide(plan, "side", profile={"vip": True})) == ["A1", "A2", "B1"]
    assert codes(decide(plan, "mail", profile={"vip": False})) == ["A1", "A2", "B1"]  # email


def test_capping_per_offer_within_the_window() -> None:
    plan = _plan({"kind": "capping", "limit": 2, "window": "7d", "per": "offer"})
    day = dt.timedelta(days=1)
    history = _history(
        ("presented", "A1", "a", day),
        ("presented", "A1", "a", 2 * day),
        ("presented", "A2", "a", day),
        ("presented", "A2", "a", 9 * day),
    )
    decision = decide(plan, "side", profile={"id": "p1"}, history=history, explain=True)
    assert codes(decision) == ["A2", "B1"]
    reasons = {t.offer_code: t.reason for t in decision.placements[0].explain or ()}
    assert reasons["A1"] == "capping 'pol': 2 presentation(s) of offer 'A1' in the last 7d, limit 2"
    # other profiles and anonymous requests are not capped by p1's history
    assert codes(decide(plan, "side", profile={"id": "p2"}, history=history)) == ["A1", "A2", "B1"]
    assert codes(decide(plan, "side", history=history)) == ["A1", "A2", "B1"]


def test_capping_per_category_counts_the_subtree() -> None:
    plan = _plan(
        {"kind": "capping", "limit": 1, "window": "30d", "per": "category", "categories": ["root"]}
    )
    history = _history(("presented", "B1", "b", dt.timedelta(days=3)))
    assert codes(decide(plan, "side", profile_id="p1", history=history)) == []


def test_capping_counts_what_the_request_itself_chooses() -> None:
    plan = _plan(
        {"kind": "capping", "limit": 2, "window": "1d", "per": "channel", "channels": ["web"]}
    )
    history = _history(("presented", "B1", "b", dt.timedelta(hours=2)))
    decision = decide(plan, "hero", "side", profile_id="p1", history=history)
    assert codes(decision, "hero") == ["A1"] and codes(decision, "side") == []
    assert codes(decide(plan, "side", profile_id="p1")) == ["A1", "A2"]


def test_category_policies_attach_to_their_subtree() -> None:
    categories = [
        {"name": "root"},
        {"name": "a", "parent": "root", "policies": ["pol"]},
        {"name": "b", "parent": "root"},
    ]
    plan = _plan(
        {"kind": "capping", "limit": 1, "window": "7d", "per": "category"}, categories=categories
    )
    history = _history(("presented", "A2", "a", dt.timedelta(days=1)))
    assert codes(decide(plan, "side", profile_id="p1", history=history)) == ["B1"]


def test_suppression_after_rejections() -> None:
    plan = _plan({"kind": "suppression", "after": "rejected", "times": 2, "period": "90d"})
    once = _history(("rejected", "A1", "a", dt.timedelta(days=5)))
    assert "A1" in codes(decide(plan, "side", profile_id="p1", history=once))
    twice = _history(
        ("rejected", "A1", "a", dt.timedelta(days=5)),
        ("rejected", "A1", "a", dt.timedelta(days=80)),
    )
    assert "A1" not in codes(decide(plan, "side", profile_id="p1", history=twice))
    old = _history(
        ("rejected", "A1", "a", dt.timedelta(days=5)),
        ("rejected", "A1", "a", dt.timedelta(days=100)),
    )
    assert "A1" in codes(decide(plan, "side", profile_id="p1", history=old))


def test_suppression_after_acceptance_forever_and_per_category() -> None:
    plan = _plan({"kind": "suppression", "after": "responded", "per": "category"})
    history = _history(("accepted", "A2", "a", dt.timedelta(days=400)))
    assert codes(decide(plan, "side", profile_id="p1", history=history)) == ["B1"]


def test_inventory_per_day_and_in_total() -> None:
    day_plan = _plan({"kind": "inventory", "limit": 2, "per": "day", "offers": ["A1"]})
    history = InMemoryHistory()
    for who, ago in (
        ("x", dt.timedelta(hours=1)),
        ("y", dt.timedelta(hours=2)),
        ("z", dt.timedelta(days=1)),
    ):
        history.record(HistoryEvent(who, "presented", "A1", ("a", "root"), "web", NOW - ago))
    assert "A1" not in codes(decide(day_plan, "side", history=history))  # 2 today, anyone
    assert "A1" in codes(decide(day_plan, "side", history=history, now=NOW + dt.timedelta(days=1)))
    total_plan = _plan({"kind": "inventory", "limit": 4, "per": "total", "offers": ["A1"]})
    assert "A1" in codes(decide(total_plan, "side", history=history))
    history.record(HistoryEvent("w", "presented", "A1", ("a", "root"), "web", NOW))
    assert "A1" not in codes(decide(total_plan, "side", history=history))


def test_policies_scope_by_placement_and_offer() -> None:
    plan = _plan({"kind": "filter", "rule": "false", "placements": ["hero"], "offers": ["A1"]})
    assert codes(decide(plan, "hero")) == ["A2"]
    assert codes(decide(plan, "side")) == ["A1", "A2", "B1"]


def test_history_counts_by_window() -> None:
    history = _history(
        ("presented", "A1", "a", dt.timedelta(days=1)),
        ("presented", "A1", "a", dt.timedelta(days=3)),
    )
    assert history.count("p1", "presented", "offer", "A1", NOW - dt.timedelta(days=2)) == 1
    assert history.count("p1", "presented", "category", "root", None) == 2
    assert history.count("p1", "presented", "channel", "web", None) == 2
    assert history.count("p2", "presented", "offer", "A1", None) == 0
    assert history.total("A1", "presented", NOW - dt.timedelta(days=5)) == 2
    assert history.total("A1", "accepted", None) == 0
