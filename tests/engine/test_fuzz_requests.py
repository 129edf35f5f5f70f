"""Any request is answered or refused with RequestError: never another exception."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from overture.catalog import load_catalog
from overture.demo import CATALOG_PATH
from overture.engine import (
    DecisionRequest,
    InMemoryHistory,
    PlacementRequest,
    RequestError,
    build_plan,
)

PLAN = build_plan(load_catalog(CATALOG_PATH), dt.datetime(2026, 1, 1), validated=True)
FIELDS = [*PLAN.audiences["customer"].fields, "unknown"]
CONTEXT = ["device", "intent", "campaign", "visit_count", "other"]

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["2026-01-02", "2026-01-02T10:00:00Z", "nan", "1e400", "true", "42"]),
    st.lists(st.one_of(st.text(max_size=5), st.integers(), st.none()), max_size=4),
    st.dates(),
    st.datetimes(),
)


@settings(max_examples=500, deadline=None)
@given(
    profile=st.dictionaries(st.sampled_from(FIELDS), values),
    context=st.dictionaries(st.sampled_from(CONTEXT), values),
    placements=st.lists(
        st.tuples(
            st.sampled_from([*PLAN.placements, "nowhere"]), st.one_of(st.none(), st.integers(-1, 5))
        ),
        min_size=1,
        max_size=4,
    ),
    categories=st.lists(st.sampled_from(["cards", "lending", "nope"]), max_size=2),
    explain=st.booleans(),
    now=st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2100, 1, 1)),
)
def test_requests_are_answered_or_refused(
    profile: dict[str, Any],
    context: dict[str, Any],
    placements: list[tuple[str, int | None]],
    categories: list[str],
    explain: bool,
    now: dt.datetime,
) -> None:
    request = DecisionRequest(
        tuple(PlacementRequest(p, n) for p, n in placements),
        profile=profile,
        context=context,
        categories=frozenset(categories),
        explain=explain,
        now=now,
    )
    refused: RequestError | None = None
    try:
        decision = PLAN.decide(request, InMemoryHistory())
    except RequestError as exc:
        refused = exc
    if refused is not None:
        assert refused.problems and all(isinstance(p, str) for p in refused.problems)
        return
    assert len(decision.placements) == len(placements)
    for pd in decision.placements:
        assert pd.propositions or pd.default_content is not None
