"""Small catalogs for engine tests, built from dicts so each test states what it changes."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from overture.catalog import Catalog, validate_catalog
from overture.engine import Decision, DecisionPlan, DecisionRequest, History, build_plan

NOW = dt.datetime(2026, 6, 15, 12, 0)

BASE: dict[str, Any] = {
    "audiences": [
        {
            "name": "customer",
            "id_field": "id",
            "fields": {
                "id": "string",
                "age": "int",
                "vip": "bool",
                "products": "list[string]",
                "income": "float",
                "first_name": "string",
            },
        }
    ],
    "context": {"intent": "string"},
    "channels": [{"name": "web"}, {"name": "email"}],
    "zones": [{"name": "home"}, {"name": "side"}],
    "placements": [
        {
            "name": "hero",
            "channel": "web",
            "zone": "home",
            "max_offers": 1,
            "fields": {"title": {"required": True}},
            "default_content": {"title": "Welcome"},
        },
        {
            "name": "side",
            "channel": "web",
            "zone": "side",
            "max_offers": 3,
            "fields": {"title": {"required": True}},
        },
        {
            "name": "mail",
            "channel": "email",
            "max_offers": 3,
            "fields": {"title": {"required": True}},
        },
    ],
    "categories": [
        {"name": "root"},
        {"name": "a", "parent": "root"},
        {"name": "b", "parent": "root"},
    ],
    "offers": [],
}


def offer(
    code: str,
    category: str = "a",
    placements: tuple[str, ...] = ("hero", "side", "mail"),
    **fields: Any,
) -> dict[str, Any]:
    return {
        "code": code,
        "name": f"Offer {code}",
        "category": category,
        "placements": list(placements),
        "content": {"title": f"Title {code}"},
        **fields,
    }


def make_catalog(**sections: Any) -> Catalog:
    data = copy.deepcopy(BASE)
    data.update(sections)
    catalog = Catalog.model_validate(data)
    report = validate_catalog(catalog)
    assert report.ok, [str(i) for i in report.issues]
    return catalog


def make_plan(**sections: Any) -> DecisionPlan:
    return build_plan(make_catalog(**sections), NOW - dt.timedelta(days=1), validated=True)


def decide(
    plan: DecisionPlan,
    *placements: str | tuple[str, int],
    history: History | None = None,
    **request: Any,
) -> Decision:
    request.setdefault("now", NOW)
    return plan.decide(DecisionRequest.for_placements(placements, **request), history)


def codes(decision: Decision, placement: str | None = None) -> list[str]:
    return [
        p.offer_code
        for pd in decision.placements
        for p in pd.propositions
        if placement is None or pd.placement == placement
    ]
