"""Validation refuses a template whose constant parts are already over a limit (docs/catalog.md,
"Template limits"), quickly, naming the offer's field; what depends on the profile is left
to the render's checks (tests/engine/test_template_limits.py)."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import pytest

from overture.catalog import Catalog, CatalogError, read_text, validate_source
from overture.catalog.templates import (
    MAX_LOOPS,
    MAX_NESTING,
    MAX_STEPS,
    MAX_VALIDATION_STEPS,
    VARIABLES,
    ValidationBudget,
    check_template,
)
from overture.engine import build_plan
from overture.engine.render import base_variables, compile_content, render
from tests.catalog.test_validate import BASE
from tests.engine.helpers import BASE as ENGINE_BASE
from tests.engine.helpers import offer


def _catalog(title: str, body: str = "Body") -> str:
    return (
        BASE
        + f"""
offers:
  - code: BIG
    name: big
    category: child
    placements: [hero]
    content: {{title: "{title}", body: "{body}"}}
"""
    )


def _problems(text: str) -> list[str]:
    return [p.message for p in check_template(text, dict.fromkeys(VARIABLES))]


def test_validation_refuses_a_huge_constant_quickly_naming_the_field() -> None:
    started = time.perf_counter()
    report = validate_source(read_text(_catalog("Hi", "{{ 'x' * 10**9 }}")))
    assert time.perf_counter() - started < 1
    assert [str(i) for i in report.errors] == [
        "offers[0].content.body:1:1: template limit: '*' would be 1,000,000,000 characters, "
        "over the output limit of 65,536 (MAX_OUTPUT) — see 'Template limits' in docs/catalog.md"
    ]


def test_building_a_plan_refuses_it_too_without_folding_it() -> None:
    # the build used to fold the constant while compiling it: 23 s and 3.9 GB
    data = copy.deepcopy(ENGINE_BASE)
    data["offers"] = [offer("BIG", content={"title": "{{ 'x' * 10**9 }}"})]
    started = time.perf_counter()
    with pytest.raises(CatalogError, match=r"offers\[0\]\.content\.title:1:1: template limit"):
        build_plan(Catalog.model_validate(data))
    assert time.perf_counter() - started < 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ 'x' * 10**9 }}", "'*' would be 1,000,000,000 characters"),
        ("{{ ('x' * 10**9) ~ profile.name }}", "'*' would be 1,000,000,000 characters"),
        ("{{ profile.name if profile.x else 'x' * 10**9 }}", "'*' would be 1,000,000,000"),
        ("{{ 'x' | center(1000000000) }}", "the center filter's result would be 1,000,000,000"),
        ("{{ 'ab'.center(10**9) }}", "str.center() would be 1,000,000,000 characters"),
        ("{{ ('x' * 60000) | replace('x', 'yy') }}", "would be 120,000 characters"),
        ("{{ '%1000000d' % profile.age }}", "'%' padding would be 1,000,000 characters"),
        ("{{ 2 ** 5000 }}", "'**' would make a number of about 5,000 bits, over the limit"),
        ("{{ profile.name ~ ('x' * 40000) ~ ('y' * 40000) }}", "'~' would be 80,000"),
        (
            "{% for a in 'x' * 200 %}{% for b in 'x' * 200 %}{{ a }}{% endfor %}{% endfor %}",
            "these loops run 40,000 times, more than the 10,000 steps a render may take",
        ),
        (
            "{% for i in range(100000) %}{{ i }}{% endfor %}",
            "range() of 100,000 numbers: a render takes at most 10,000 steps",
        ),
        # the review's three: a list or tuple table built its 480 MB result before it was
        # measured; a lazy filter chain ran uncharged for seconds; wordwrap's quadratic work
        # ended on the clock, which depends on the machine's load
        (
            "{{ ('\\x00' * 24000).translate(['y' * 20000]) }}",
            "str.translate() would be 480,000,000 characters, over the output limit",
        ),
        (
            "{{ ('\\x00' * 65000).translate(('y' * 65000,)) }}",
            "str.translate() would be 4,225,000,000 characters",
        ),
        (
            "{{ (('x' * 65000) | list) | reverse"
            + " | select('string')" * 10
            + " | map('length') | sum }}",
            "the template took more than 10,000 steps of work",
        ),
        ("{{ ('x' * 32000) | wordwrap(1) }}", "the wordwrap filter would take 540,000 steps"),
    ],
)
def test_constant_parts_over_a_limit_are_refused(text: str, expected: str) -> None:
    problems = [p for p in _problems(text) if p.startswith("template limit: ")]
    assert len(problems) == 1 and expected in problems[0], problems


@pytest.mark.parametrize(
    "text",
    [
        "Hello {{ profile.first_name | default('there') | title }}",
        "{{ 'x' * (10**9 + profile.age) }}",  # depends on the profile: the render checks it
        "{% for p in profile.products %}{% for q in profile.products %}{{ p }}{% endfor %}"
        "{% endfor %}",
        "{{ '-' * 40 }} {{ 2 ** 64 }} {{ '%5.1f' % offer.apr }} {{ 'ab' | center(20) }}",
        "{% for a in 'abc' %}{% for b in 'x' * 100 %}{{ a }}{% endfor %}{% endfor %}",
    ],
)
def test_what_may_be_within_the_limits_is_accepted(text: str) -> None:
    assert not [p for p in _problems(text) if p.startswith("template limit")]


def test_validation_spends_one_budget_and_reports_only_what_the_steps_decide() -> None:
    fields = dict.fromkeys(VARIABLES)
    over = "{{ ('x' * 32000) | wordwrap(1) }}"
    budget = ValidationBudget()
    # each expression is evaluated with MAX_STEPS of its own, as a render would, and charged
    # to the budget: it holds four of them
    assert len(check_template(over * 10, fields, budget)) == MAX_VALIDATION_STEPS // MAX_STEPS
    assert budget.steps <= 0
    # spent: what is left is not evaluated, and nothing is reported for it (a render is
    # checked all the same)
    assert check_template(over, fields, budget) == []
    assert len(check_template(over, fields)) == 1  # by default, the template's own budget


def test_validating_many_costly_constant_parts_is_bounded() -> None:
    # each was evaluated on a fresh budget: 300 of these took 2 s
    within = "{{ (('x' * 4000) | list) | map('upper') | list | length }}"  # 8,200 steps
    started = time.perf_counter()
    assert not _problems(within * 300)
    assert time.perf_counter() - started < 0.5


def test_validation_does_not_depend_on_the_machines_load(monkeypatch: pytest.MonkeyPatch) -> None:
    # a machine a thousand times slower: the clock (a safety net) stops evaluating this
    # (6,200 steps, within the limit), and nothing is reported, where 50 ms of the clock
    # used to report it; what the steps or sizes decide is reported as on any machine
    monotonic = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: monotonic() * 1000)
    assert not _problems("{{ (('x' * 3000) | list) | sort | unique | list | sort | length }}")
    assert _problems("{{ 'x' * 10**9 }}") == [
        "template limit: '*' would be 1,000,000,000 characters, over the output limit of "
        "65,536 (MAX_OUTPUT)"
    ]


def test_default_content_is_checked_too() -> None:
    source = _catalog("Hi").replace(
        "fields: {title: {required: true}, body: {}}",
        "fields: {title: {required: true}, body: {}}\n    default_content: "
        "{title: \"{{ 'x' * 10**9 }}\"}",
    )
    issues = [str(i) for i in validate_source(read_text(source)).errors]
    assert len(issues) == 1
    assert issues[0].startswith("placements[0].default_content.title:1:1: template limit")


_NESTED: dict[str, Callable[[int], str]] = {
    "filters": lambda n: "{{ profile.x" + " | upper" * n + " }}",
    "operators": lambda n: "{{ " + " + ".join(["profile.x"] * n) + " }}",
    "brackets": lambda n: "{{ " + "(" * n + "profile.x" + ")" * n + " }}",
    "lists": lambda n: "{{ " + "[" * n + "1" + "]" * n + " }}",
    "conditions": lambda n: "{{ " + "1 if profile.x else (" * n + "2" + ")" * n + " }}",
    "ifs": lambda n: "{% if profile.x %}" * n + "a" + "{% endif %}" * n,
    "loops": lambda n: "{% for a in profile.x %}" * n + "{{ a }}" + "{% endfor %}" * n,
    "macros": lambda n: "{% macro m() %}" * n + "a" + "{% endmacro %}" * n,
    "elifs": lambda n: (
        "{% if profile.x == 0 %}a"
        + "".join("{% elif profile.x == " + str(i) + " %}b" for i in range(1, n))
        + "{% else %}c{% endif %}"
    ),
}


def _at_depth(frames: int, call: Callable[[], Any]) -> Any:
    """`call()` run `frames` Python frames deeper than here."""
    return call() if frames == 0 else _at_depth(frames - 1, call)


@pytest.mark.parametrize("shape", sorted(_NESTED))
def test_a_template_nested_too_deeply_is_refused_and_anything_less_compiles(shape: str) -> None:
    # deeper than Python compiles (200 brackets in an expression, 100 indentation levels,
    # 20 nested loops), Jinja's compiler failed at deployment, and validation raised
    # RecursionError (the design API answered 500): now a problem beside the field
    make = _NESTED[shape]
    n = 1
    while not _problems(make(n + 1)):
        n += 1
        assert n < 500, "a limit on nesting applies"
    accepted, refused = make(n), make(n + 1)
    fields = compile_content({"t": accepted}, html=False)
    variables = base_variables() | {"profile": {"x": [1]}}
    assert isinstance(render(fields, variables)["t"], str)  # what is accepted, the engine runs
    for text in (refused, make(3000)):
        (problem,) = check_template(text, dict.fromkeys(VARIABLES))
        assert problem.message.startswith("template nested too deeply: "), problem
        assert "{% set" in (problem.hint or "")
    assert n >= 9, "an ordinary template's nesting is accepted"
    # the same answer however deep the caller's stack already is (the console validates
    # inside a request; Jinja's parser recurses a dozen times a bracket)
    for frames in (100, 300):
        assert _at_depth(frames, lambda: _problems(accepted)) == []
        assert _at_depth(frames, lambda: _problems(refused)) == _problems(refused)


def test_a_template_may_define_and_call_its_own_macros() -> None:
    text = (
        "{% macro money(x) %}{{ '%.2f' % x }} {{ varargs | length }}{% endmacro %}"
        "{% macro box() %}[{{ caller() }}]{% endmacro %}"
        "{{ money(offer.apr) }} {% call box() %}{{ profile.first_name }}{% endcall %}"
    )
    assert _problems(text) == []
    fields = compile_content({"t": text}, html=False)
    variables = base_variables() | {"profile": {"first_name": "Ann"}, "offer": {"apr": 3}}
    assert render(fields, variables)["t"] == "3.00 0 [Ann]"


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("{% include 'footer.html' %}", "include"),
        ("{% extends 'base.html' %}", "extends"),
        ("{% import 'macros.html' as m %}", "import"),
        ("{% from 'macros.html' import box %}", "from … import"),
    ],
)
def test_reading_other_templates_is_refused(text: str, tag: str) -> None:
    # they passed validation and failed every render: there is no other template
    assert f"{{% {tag} %}} is not available: offer content is one template" in _problems(text)[0]


def test_nesting_limits_name_what_is_over() -> None:
    loops = "{% for a in profile.x %}" * (MAX_LOOPS + 1) + "{% endfor %}" * (MAX_LOOPS + 1)
    assert _problems(loops) == [
        f"template nested too deeply: {MAX_LOOPS + 1} loops inside one another, "
        f"over {MAX_LOOPS} (MAX_LOOPS)"
    ]
    filters = "{{ profile.x" + " | upper" * (MAX_NESTING + 5) + " }}"
    assert _problems(filters) == [
        f"template nested too deeply: {MAX_NESTING + 1} levels, over {MAX_NESTING} (MAX_NESTING)"
    ]
