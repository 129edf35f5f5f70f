"""Deciding with the demo catalog, with history (run by tests/docs/test_examples.py)."""

from __future__ import annotations

import datetime as dt

from overture.catalog import load_catalog
from overture.demo import CATALOG_PATH
from overture.engine import DecisionRequest, HistoryEvent, InMemoryHistory, build_plan

NOW = dt.datetime(2026, 11, 23, 10, 0)
STUDENT = {
    "customer_id": "C1",
    "first_name": "Ana",
    "age": 20,
    "is_student": True,
    "products": [],
    "has_mobile_app": True,
}


def main() -> dict[str, object]:
    plan = build_plan(load_catalog(CATALOG_PATH), NOW)
    history = InMemoryHistory()
    request = DecisionRequest.for_placements(["app_home_card"], profile=STUDENT, now=NOW)
    first = plan.decide(request, history)

    # The student rejects the first offer twice: the `rejected_twice` policy suppresses it.
    top = first.propositions[0]
    for days in (1, 2):
        history.record(
            HistoryEvent(
                "C1",
                "rejected",
                top.offer_code,
                ("current_accounts",),
                "mobile_app",
                NOW - dt.timedelta(days=days),
            )
        )
    second = plan.decide(request, history)
    return {
        "first": [p.offer_code for p in first.propositions],
        "greeting": top.content["body"],
        "after two rejections": [p.offer_code for p in second.propositions],
    }


if __name__ == "__main__":
    for key, value in main().items():
        print(f"{key}: {value}")
