"""Arbitrary text never makes the rule language raise anything but RuleError.

Whatever parses and checks also compiles (to Python and to SQL) and evaluates without an
unexpected exception: the engine counts rule errors, it must never crash on one.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from overture.rules import (
    DIALECTS,
    Instant,
    RuleError,
    check,
    compile_predicate,
    parse,
    to_sql,
)
from tests.rules.strategies import SCHEMA

# Pieces of the language and of Python, so that random text often comes close to valid.
_PIECES = [
    "age",
    "i1",
    "f1",
    "s1",
    "b1",
    "d1",
    "t1",
    "l1",
    "context.i",
    "context.s",
    "segment.a",
    " and ",
    " or ",
    " not ",
    " in ",
    " is ",
    " None ",
    " if ",
    " else ",
    "==",
    "!=",
    "<",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "(",
    ")",
    "[",
    "]",
    ",",
    ".",
    "'x'",
    '"y"',
    "1",
    "2.5",
    "1e3",
    "True",
    "False",
    "today()",
    "days_since(",
    "coalesce(",
    "len(",
    "max(",
    "date('2024-01-01')",
    "__class__",
    "lambda",
    " for ",
    "import",
    "**",
    ":=",
    "{",
    "}",
    ":",
    "\\",
    "#",
    "\n",
    "é",
    "\x00",
    "'",
    '"',
    "0x10",
    "1_000",
    "@",
    "`",
    "$",
]
_fragments = st.lists(st.sampled_from(_PIECES), max_size=25).map("".join)
_any_text = st.one_of(st.text(max_size=200), _fragments, _fragments)


@settings(max_examples=1500)
@given(source=_any_text)
def test_only_rule_errors_escape(source: str) -> None:
    error: RuleError | None = None
    try:
        tree = check(parse(source), SCHEMA)
    except RuleError as exc:
        error = exc
    if error is not None:
        assert error.line >= 1 and error.column >= 1 and error.message
        return
    predicate = compile_predicate(tree)
    instant = Instant.at(dt.datetime(2026, 1, 1))
    row = {
        "i1": 3,
        "f1": 1.5,
        "s1": "x",
        "b1": True,
        "d1": dt.date(2020, 1, 1),
        "t1": dt.datetime(2020, 1, 1),
        "l1": ["x"],
    }
    for profile in ({}, row):
        assert predicate(profile, {"i": 1, "s": "y"}, {"a": True}, {}, instant) in (True, False)
    for dialect in DIALECTS:
        assert to_sql(tree, dialect, now=instant.now)


def test_a_digit_of_another_script_is_an_unexpected_character() -> None:
    """Found by the fuzz test above: `\\d` matched Arabic-Indic digits, the number pattern
    (ASCII) then matched nothing, and int('') escaped as a ValueError."""
    from overture.rules import RuleError, parse

    for source in ("\u0663", "age > \u0663", "x == 1\u0663"):
        try:
            parse(source)
        except RuleError:
            continue
        raise AssertionError(f"{source!r} parsed")
