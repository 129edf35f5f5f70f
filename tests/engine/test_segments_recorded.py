"""A decision says which segments the profile is in when asked (what the history records
for the reports by segment), and only then: decisions that record nothing pay nothing."""

from __future__ import annotations

import datetime as dt

from overture.catalog import load_catalog
from overture.demo import CATALOG_PATH
from overture.engine import DecisionRequest, build_plan

PLAN = build_plan(load_catalog(CATALOG_PATH), validated=True)
STUDENT = {"customer_id": "C1", "age": 20, "is_student": True, "products": [], "income": 10_000}


def _decide(segments: bool) -> tuple[str, ...]:
    request = DecisionRequest.for_placements(
        ["web_home_hero"], profile=STUDENT, now=dt.datetime(2026, 11, 23), segments=segments
    )
    return PLAN.decide(request).segments


def test_the_segments_of_the_profile_come_with_the_decision_when_asked() -> None:
    found = _decide(segments=True)
    assert "young_adults" in found and "affluent" not in found
    assert _decide(segments=False) == ()
