"""Generated catalogs and populations for benchmarks: sized by parameters, seeded, realistic.

`catalog(offers=1000, placements=20)` gives every placement about offers/placements
candidates with eligibility rules of two to four clauses, a three-level category tree with
inherited rules, segments and treatment rules, some weight expressions, and ten policies of
all four kinds.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from typing import Any

from overture.catalog import Catalog
from overture.engine import HistoryEvent, InMemoryHistory

CHANNELS = ("web", "mobile_app", "call_centre", "email")
PRODUCTS = ("current", "savings", "card", "mortgage", "loan", "invest", "insurance", "pension")
COUNTRIES = ("FR", "DE", "ES", "IT", "NL", "GB")
TIERS = ("basic", "silver", "gold", "platinum")

_CLAUSES: tuple[Callable[[random.Random], str], ...] = (
    lambda r: f"age >= {r.randint(18, 30)}",
    lambda r: f"age < {r.randint(40, 80)}",
    lambda r: f"income > {r.randint(10, 90) * 1000}",
    lambda r: f"country in ({', '.join(repr(c) for c in r.sample(COUNTRIES, 3))})",
    lambda r: f"'{r.choice(PRODUCTS)}' not in products",
    lambda r: f"'{r.choice(PRODUCTS)}' in products",
    lambda r: f"tier != '{r.choice(TIERS)}'",
    lambda r: f"coalesce(score, 600) >= {r.randint(450, 700)}",
    lambda r: f"days_since(last_login) < {r.randint(7, 120)}",
    lambda r: f"balance >= {r.randint(0, 20) * 500}",
    lambda r: f"not is_student or age > {r.randint(20, 26)}",
    lambda r: f"tenure >= {r.randint(0, 5)}",
)


def catalog(offers: int = 1000, placements: int = 20, seed: int = 1) -> Catalog:
    r = random.Random(seed)
    names = [f"p{i:02d}" for i in range(placements)]
    cats: list[dict[str, Any]] = []
    leaves = []
    for a in range(5):
        cats.append({"name": f"c{a}", "eligibility": "age >= 16" if a % 2 else None})
        for b in range(4):
            cats.append(
                {
                    "name": f"c{a}{b}",
                    "parent": f"c{a}",
                    "eligibility": f"tenure >= {b}" if b % 2 else None,
                }
            )
            for c in range(2):
                leaf = f"c{a}{b}{c}"
                cats.append(
                    {
                        "name": leaf,
                        "parent": f"c{a}{b}",
                        "policies": ["category_fatigue"] if c == 0 and b == 0 else [],
                    }
                )
                leaves.append(leaf)
    offer_list = []
    for i in range(offers):
        clauses = [f(r) for f in r.sample(_CLAUSES, r.randint(2, 4))]
        weight: Any = round(r.uniform(0.5, 3), 2)
        if i % 10 == 3:
            weight = "1 + coalesce(balance, 0) / 20000"
        offer_list.append(
            {
                "code": f"O{i:04d}",
                "name": f"Offer {i}",
                "category": leaves[i % len(leaves)],
                "eligibility": " and ".join(clauses),
                "weights": [{"value": weight}]
                + ([{"value": 4, "rule": "context.intent == 'buy'"}] if i % 10 == 7 else []),
                "value": r.randint(1, 500),
                "placements": [names[i % placements]],
                "content": {
                    "title": f"Offer {i}",
                    "body": "Hello {{ profile.first_name or 'there' }}"
                    if i % 4 == 0
                    else "Static body",
                },
            }
        )
    segments = [
        {"name": "young", "rule": "age < 30"},
        {"name": "rich", "rule": "income > 80000 or balance > 50000"},
        {"name": "loyal", "rule": "tenure >= 5"},
        {"name": "active", "rule": "days_since(last_login) < 14"},
        {"name": "borrowers", "rule": "'loan' in products or 'mortgage' in products"},
        {"name": "savers", "rule": "'savings' in products"},
        {"name": "premium", "rule": "tier in ('gold', 'platinum')"},
        {"name": "students", "rule": "is_student"},
    ]
    treatments = []
    for k in range(20):
        rule: dict[str, Any] = {
            "name": f"t{k}",
            "segment": segments[k % 8]["name"],
            "score": 40 + 3 * k,
        }
        if k % 2:
            rule["category"] = f"c{k % 5}{k % 4}"
        else:
            rule["offers"] = [f"O{j:04d}" for j in range(k, offers, 97)]
        treatments.append(rule)
    policies = [
        {
            "name": "offer_weekly",
            "kind": "capping",
            "per": "offer",
            "limit": 3,
            "window": "7d",
            "channels": ["web", "mobile_app"],
        },
        {
            "name": "email_daily",
            "kind": "capping",
            "per": "channel",
            "limit": 5,
            "window": "1d",
            "channels": ["email"],
        },
        {
            "name": "category_fatigue",
            "kind": "capping",
            "per": "category",
            "limit": 4,
            "window": "30d",
        },
        {
            "name": "rejected_twice",
            "kind": "suppression",
            "after": "rejected",
            "times": 2,
            "period": "90d",
        },
        {"name": "accepted", "kind": "suppression", "after": "accepted"},
        {
            "name": "category_rejected",
            "kind": "suppression",
            "after": "rejected",
            "per": "category",
            "period": "14d",
            "categories": ["c1", "c3"],
        },
        {"name": "consent", "kind": "filter", "channels": ["email"], "rule": "not is_student"},
        {
            "name": "complaints",
            "kind": "filter",
            "channels": ["call_centre"],
            "rule": "coalesce(context.intent, '') != 'complaint'",
        },
        {
            "name": "launch",
            "kind": "inventory",
            "per": "day",
            "limit": 1000,
            "offers": [f"O{j:04d}" for j in range(0, offers, 50)],
        },
        {
            "name": "lifetime",
            "kind": "inventory",
            "per": "total",
            "limit": 100000,
            "categories": ["c4"],
        },
    ]
    return Catalog.model_validate(
        {
            "name": f"generated-{offers}",
            "audiences": [
                {
                    "name": "customer",
                    "id_field": "id",
                    "fields": {
                        "id": "string",
                        "first_name": "string",
                        "age": "int",
                        "income": "float",
                        "balance": "float",
                        "country": "string",
                        "tier": "string",
                        "products": "list[string]",
                        "score": "int",
                        "tenure": "int",
                        "last_login": "datetime",
                        "is_student": "bool",
                    },
                }
            ],
            "context": {"device": "string", "intent": "string"},
            "channels": [{"name": c} for c in CHANNELS],
            "placements": [
                {
                    "name": n,
                    "channel": CHANNELS[i % 4],
                    "max_offers": 3,
                    "fields": {"title": {"required": True}, "body": {}},
                }
                for i, n in enumerate(names)
            ],
            "categories": [{k: v for k, v in c.items() if v is not None} for c in cats],
            "offers": offer_list,
            "segments": segments,
            "treatment_rules": treatments,
            "policies": policies,
        }
    )


def profiles(count: int, now: dt.datetime, seed: int = 2) -> list[dict[str, Any]]:
    r = random.Random(seed)
    return [
        {
            "id": f"P{i:06d}",
            "first_name": r.choice(("Ana", "Ben", "Chloé", "Dev")),
            "age": r.randint(16, 85),
            "income": float(r.randint(5, 150) * 1000),
            "balance": float(r.randint(0, 100_000)),
            "country": r.choice(COUNTRIES),
            "tier": r.choice(TIERS),
            "products": r.sample(PRODUCTS, r.randint(0, 4)),
            "score": r.choice((None, r.randint(350, 850))),
            "tenure": r.randint(0, 20),
            "last_login": now - dt.timedelta(hours=r.randint(1, 24 * 90)),
            "is_student": r.random() < 0.1,
        }
        for i in range(count)
    ]


def history(
    people: list[dict[str, Any]],
    cat: Catalog,
    now: dt.datetime,
    seed: int = 3,
    events_per_profile: int = 12,
) -> InMemoryHistory:
    """Presentations and responses for every profile over the last 60 days."""
    r = random.Random(seed)
    chains = {c.name: c.parent for c in cat.categories}
    offers = cat.offers
    channel_of = {p.name: p.channel for p in cat.placements}
    h = InMemoryHistory()
    for person in people:
        for _ in range(r.randint(0, 2 * events_per_profile)):
            offer = r.choice(offers)
            chain, c = [], offer.category
            while c:
                chain.append(c)
                c = chains.get(c)  # type: ignore[assignment]
            kind = r.choices(("presented", "accepted", "rejected"), (8, 1, 2))[0]
            h.record(
                HistoryEvent(
                    person["id"],
                    kind,
                    offer.code,
                    tuple(chain),
                    channel_of[next(iter(offer.placements))],
                    now - dt.timedelta(minutes=r.randint(1, 60 * 24 * 60)),
                )
            )
    return h
