"""Validation never raises: any input gets a report, and a catalog that passes can be
compiled and decided with."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from overture.catalog import read_source, read_text, validate_source
from overture.catalog.loader import Source
from overture.demo import CATALOG_PATH
from overture.engine import DecisionRequest, RequestError, build_plan

DEMO = read_source(CATALOG_PATH).data

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.dates().map(lambda d: d),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
yaml_fragments = st.lists(
    st.sampled_from(
        [
            "offers:",
            "placements:",
            "categories:",
            "  - ",
            "code: A",
            "name: x",
            "category: c",
            "eligibility: age > 1",
            "weight: 0",
            "kind: capping",
            "window: 7d",
            "{",
            "}",
            "[",
            "]",
            ": ",
            "\n",
            "  ",
            "&a ",
            "*a",
            "<<: *a",
            "!!python/object:os.system",
            "'",
            '"',
            "#",
            "audiences:",
            "fields: {id: string}",
            "id_field: id",
            "- name: c",
            "parent: c",
        ]
    ),
    max_size=40,
).map("".join)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(st.text(max_size=300), yaml_fragments))
def test_any_text_gets_a_report(text: str) -> None:
    report = validate_source(read_text(text))
    assert report.catalog is None or report.ok
    for issue in report.issues:
        assert issue.message


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_paths(v, (*prefix, i)))
    return out


_DEMO_PATHS = [p for p in _paths(DEMO) if p]


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(
        st.tuples(st.sampled_from(_DEMO_PATHS), json_values, st.booleans()), min_size=1, max_size=3
    ),
    profile=st.dictionaries(
        st.sampled_from(["age", "income", "products", "customer_id", "last_login", "is_student"]),
        json_values,
    ),
)
def test_mutated_catalogs_are_reported_or_work(
    edits: list[tuple[tuple[Any, ...], Any, bool]], profile: dict[str, Any]
) -> None:
    data = copy.deepcopy(DEMO)
    for path, value, delete in edits:
        parent = data
        try:
            for key in path[:-1]:
                parent = parent[key]
            if delete and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    report = validate_source(Source(data=data))
    if report.catalog is None:
        assert report.errors
        return
    plan = build_plan(report.catalog, validated=True)
    request = DecisionRequest.for_placements(
        list(plan.placements), profile=profile, now=dt.datetime(2026, 11, 23)
    )
    refused: RequestError | None = None
    try:
        plan.decide(request)
    except RequestError as exc:
        refused = exc
    assert refused is None or refused.problems


BOMB = (
    "".join(
        f"{name}: &{name} [{', '.join([f'*{prev}'] * 10 if prev else ['x'] * 10)}]\n"
        for prev, name in zip(["", "a", "b", "c", "d", "e", "f"], "abcdefg", strict=True)
    )
    + "channels: [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("channels: &x [*x]\n", "refers to a node that contains it"),
        ("channels:\n  - &n {name: web, more: [*n]}\n", "refers to a node that contains it"),
        (BOMB, "expand to far more data than the file holds"),
    ],
    ids=["self", "nested", "billion-laughs"],
)
def test_hostile_yaml_aliases_are_refused_quickly(text: str, message: str) -> None:
    """A few hundred bytes must not hang the loader or exhaust the stack: aliases naming
    their own container, and aliases nested to expand ten-billion-fold, are errors."""
    report = validate_source(read_text(text, "hostile.yaml"))
    assert not report.ok
    assert any(message in issue.message for issue in report.errors), report.errors
