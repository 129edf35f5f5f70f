"""Hypothesis strategies: well-typed rule texts over a fixed schema, and rows for it.

Expressions are generated as text, so the parser is exercised too. Values reach the ends
of every range the language defines (docs/rules.md "Numbers", "Dates", "Strings"):
64-bit integers at ±2**63 and around 2**53, floats up to ±1.8e308 and down to 5e-324,
dates from year 1 to 9999, letters whose case mappings differ between engines, the
spaces TRIM treats differently; what is outside (NaN, ±inf, null list items, integers past
64 bits) is made null or dropped when data is read, and `raw_rows` produces it for the
readers' tests.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from overture.rules import Schema, Type

SCHEMA = Schema(
    profile={
        "i1": Type.INT,
        "i2": Type.INT,
        "f1": Type.FLOAT,
        "f2": Type.FLOAT,
        "s1": Type.STRING,
        "s2": Type.STRING,
        "b1": Type.BOOL,
        "d1": Type.DATE,
        "d2": Type.DATE,
        "t1": Type.DATETIME,
        "l1": Type.LIST,
    },
    context={"i": Type.INT, "s": Type.STRING},
    segments=frozenset({"a"}),
)
NOW = dt.datetime(2026, 11, 23, 14, 30, 5)

# Plain letters, and characters each engine maps or trims its own way: ß (SS in Python, ẞ in
# DuckDB), İ, final sigma, ǰ and ΐ (two-character capitals), the ﬁ ligature, the Kelvin
# sign, long s, a non-breaking and an ideographic space, a letter outside the BMP.
ALPHABET = "abcXYZ éÜ-ßİΣσςǰΐﬁKſ\u00a0\u3000𐐀"
texts = st.text(ALPHABET, max_size=5)
EDGE_INTS = [
    0, 1, -1, 2**31, -(2**31), 2**53, 2**53 + 1, -(2**53) - 1, 2**62, 2**63 - 1, -(2**63),
    -(2**63) + 1,
]  # fmt: skip
small_ints = st.integers(-60, 60)
ints = st.one_of(small_ints, small_ints, small_ints, st.sampled_from(EDGE_INTS))
EDGE_FLOATS = [
    2.0**53, 2.0**53 + 2, -(2.0**53), 2.0**63, -(2.0**63), 9.223372036854775e18, 1e308,
    -1e308, 1.7976931348623157e308, 5e-324, -5e-324, 1e-300, 0.49999999999999994, 1e15 + 0.5,
    2.5e-308,
]  # fmt: skip
floats = st.one_of(
    st.sampled_from([0.0, -0.0, 0.5, -0.5, 1.5, 2.5, -2.5, 3.25, 100.0, 1e-3, 7.0, -12.75]),
    st.sampled_from(EDGE_FLOATS),
)
_ENDS = [dt.date(1, 1, 1), dt.date(1, 1, 2), dt.date(9999, 12, 31), dt.date(9999, 12, 30)]
dates = st.one_of(
    st.dates(dt.date(1990, 1, 1), dt.date(2040, 12, 31)), st.dates(), st.sampled_from(_ENDS)
)
datetimes = st.one_of(
    st.datetimes(dt.datetime(1990, 1, 1), dt.datetime(2040, 12, 31)),
    st.datetimes(),
    st.sampled_from([dt.datetime.min, dt.datetime.max, dt.datetime(9999, 12, 31, 12)]),
)


def _float_text(x: float) -> str:
    text = repr(x)
    return text if "e" in text or "." in text else text + ".0"


def _lit_str(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


# What data may hold but the language never sees: readers make these null or drop them.
RAW_FLOATS = [math.nan, math.inf, -math.inf]


def rows(raw: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    """Rows of values the language holds; with `raw`, as data may hold them (NaN and ±inf
    in floats, nulls inside lists), for a test that reads them as the product does."""

    def nullable(s: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(st.none(), s, s)

    float_values = st.one_of(floats, st.sampled_from(RAW_FLOATS)) if raw else floats
    items = st.one_of(texts, st.none()) if raw else texts
    return st.fixed_dictionaries(
        {
            "i1": nullable(ints),
            "i2": nullable(ints),
            "f1": nullable(float_values),
            "f2": nullable(float_values),
            "s1": nullable(texts),
            "s2": nullable(texts),
            "b1": nullable(st.booleans()),
            "d1": nullable(dates),
            "d2": nullable(dates),
            "t1": nullable(datetimes),
            "l1": nullable(st.lists(items, max_size=3)),
            "ctx_i": nullable(ints),
            "ctx_s": nullable(texts),
            "seg_a": st.booleans(),
        }
    )


_CACHE: dict[tuple[Type, int], st.SearchStrategy[str]] = {}


def expression(t: Type, depth: int = 3) -> st.SearchStrategy[str]:
    """Rule text of type `t` (cached: the composites share their sub-strategies; building
    them afresh each time is exponential in the depth)."""
    if (t, depth) not in _CACHE:
        leaves = _LEAVES[t]()
        if depth <= 0:
            _CACHE[t, depth] = leaves
        else:
            sub = {k: functools.partial(expression, k, depth - 1) for k in _LEAVES}
            _CACHE[t, depth] = st.one_of(leaves, leaves, *_COMPOSITES[t](sub))
    return _CACHE[t, depth]


def _fmt(template: str, *parts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(*parts).map(lambda xs: template.format(*xs))


_LEAVES = {
    Type.INT: lambda: st.one_of(ints.map(str), st.sampled_from(["i1", "i2", "context.i"])),
    Type.FLOAT: lambda: st.one_of(floats.map(_float_text), st.sampled_from(["f1", "f2"])),
    Type.STRING: lambda: st.one_of(texts.map(_lit_str), st.sampled_from(["s1", "s2", "context.s"])),
    Type.BOOL: lambda: st.sampled_from(["b1", "segment.a", "True", "False"]),
    Type.DATE: lambda: st.one_of(
        dates.map(lambda d: f"date('{d.isoformat()}')"), st.sampled_from(["d1", "d2", "today()"])
    ),
    Type.DATETIME: lambda: st.one_of(
        datetimes.map(lambda d: f"datetime('{d.isoformat()}')"), st.sampled_from(["t1", "now()"])
    ),
    Type.LIST: lambda: st.just("l1"),
}

_ORDERED = (Type.INT, Type.FLOAT, Type.STRING, Type.DATE, Type.DATETIME)


def _comparisons(sub: dict[Type, Any]) -> list[st.SearchStrategy[str]]:
    ops = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
    out = [
        st.tuples(sub[t](), ops, sub[t]()).map(lambda x: f"({x[0]} {x[1]} {x[2]})")
        for t in _ORDERED
    ]
    out.append(_fmt("({} < {})", sub[Type.INT](), sub[Type.FLOAT]()))
    out.append(_fmt("({} == {})", sub[Type.INT](), sub[Type.FLOAT]()))
    out.append(_fmt("({} in ({}, {}))", sub[Type.INT](), sub[Type.FLOAT](), sub[Type.INT]()))
    out.append(_fmt("({} == {})", sub[Type.BOOL](), sub[Type.BOOL]()))
    out.append(_fmt("({} < {} <= {})", sub[Type.INT](), sub[Type.INT](), sub[Type.INT]()))
    return out


def _bool_composites(sub: dict[Type, Any]) -> list[st.SearchStrategy[str]]:
    b = sub[Type.BOOL]
    int_list = st.lists(
        st.one_of(small_ints.map(str), st.just("None"), st.just("i2")), min_size=1, max_size=4
    ).map(", ".join)
    str_list = st.lists(
        st.one_of(texts.map(_lit_str), st.just("None")), min_size=1, max_size=3
    ).map(", ".join)
    return [
        *_comparisons(sub),
        _fmt("({} and {})", b(), b()),
        _fmt("({} or {})", b(), b()),
        _fmt("(not {})", b()),
        _fmt("({} and {} or {})", b(), b(), b()),
        _fmt("({} in ({},))", sub[Type.INT](), int_list),
        _fmt("({} not in ({},))", sub[Type.INT](), int_list),
        _fmt("({} in [{}])", sub[Type.STRING](), str_list),
        _fmt("({} not in [{}])", sub[Type.STRING](), str_list),
        _fmt("({} in l1)", sub[Type.STRING]()),
        _fmt("({} not in l1)", sub[Type.STRING]()),
        *(_fmt("({} is None)", sub[t]()) for t in (Type.INT, Type.STRING, Type.DATE, Type.BOOL)),
        _fmt("({} is not None)", sub[Type.FLOAT]()),
        _fmt("is_null({})", sub[Type.DATETIME]()),
        _fmt("contains({}, {})", sub[Type.STRING](), sub[Type.STRING]()),
        _fmt("starts_with({}, {})", sub[Type.STRING](), sub[Type.STRING]()),
        _fmt("ends_with({}, {})", sub[Type.STRING](), sub[Type.STRING]()),
        _fmt("({} if {} else {})", b(), b(), b()),
        _fmt("coalesce({}, {})", b(), b()),
    ]


def _int_composites(sub: dict[Type, Any]) -> list[st.SearchStrategy[str]]:
    i = sub[Type.INT]
    d = st.one_of(sub[Type.DATE](), sub[Type.DATETIME]())
    return [
        _fmt("({} + {})", i(), i()),
        _fmt("({} - {})", i(), i()),
        _fmt("({} * {})", i(), i()),
        _fmt("({} % {})", i(), i()),
        _fmt("(-{})", i()),
        _fmt("abs({})", i()),
        _fmt("round({})", i()),
        _fmt("floor({})", i()),
        _fmt("round({})", sub[Type.FLOAT]()),
        _fmt("floor({})", sub[Type.FLOAT]()),
        _fmt("ceil({})", sub[Type.FLOAT]()),
        _fmt("(round({}) % 2)", sub[Type.FLOAT]()),
        _fmt("len({})", sub[Type.STRING]()),
        _fmt("len({})", sub[Type.LIST]()),
        _fmt("days_since({})", d),
        _fmt("days_until({})", d),
        _fmt("days_between({}, {})", d, d),
        _fmt("year({})", d),
        _fmt("month({})", d),
        _fmt("day({})", d),
        _fmt("weekday({})", d),
        _fmt("coalesce({}, {})", i(), i()),
        _fmt("coalesce(None, {}, {})", i(), i()),
        _fmt("max({}, {})", i(), i()),
        _fmt("min({}, {}, {})", i(), i(), i()),
        _fmt("({} if {} else {})", i(), sub[Type.BOOL](), i()),
    ]


def _float_composites(sub: dict[Type, Any]) -> list[st.SearchStrategy[str]]:
    f = sub[Type.FLOAT]
    num = st.one_of(f(), sub[Type.INT]())
    return [
        _fmt("({} + {})", f(), num),
        _fmt("({} - {})", num, f()),
        _fmt("({} * {})", f(), f()),
        _fmt("({} / {})", num, num),
        _fmt("(-{})", f()),
        _fmt("abs({})", f()),
        _fmt("max({}, {})", f(), num),
        _fmt("coalesce({}, {})", f(), num),
        _fmt("({} if {} else {})", f(), sub[Type.BOOL](), num),
    ]


def _string_composites(sub: dict[Type, Any]) -> list[st.SearchStrategy[str]]:
    s = sub[Type.STRING]
    return [
        _fmt("({} + {})", s(), s()),
        _fmt("lower({})", s()),
        _fmt("upper({})", s()),
        _fmt("trim({})", s()),
        _fmt("coalesce({}, {})", s(), s()),
        _fmt("min({}, {})", s(), s()),
        _fmt("({} if {} else {})", s(), sub[Type.BOOL](), s()),
    ]


def _date_composites(sub: dict[Type, Any]) -> list[st.SearchStrategy[str]]:
    days = st.one_of(st.integers(-400, 400), st.sampled_from([3_000_000, -3_652_059])).map(str)
    return [
        _fmt("add_days({}, {})", sub[Type.DATE](), st.one_of(days, st.just("i1"))),
        _fmt("date({})", sub[Type.DATETIME]()),
        _fmt("max({}, {})", sub[Type.DATE](), sub[Type.DATE]()),
        _fmt("coalesce({}, {})", sub[Type.DATE](), sub[Type.DATE]()),
    ]


def _datetime_composites(sub: dict[Type, Any]) -> list[st.SearchStrategy[str]]:
    days = st.one_of(st.integers(-400, 400), st.sampled_from([3_000_000, -3_652_059])).map(str)
    return [
        _fmt("add_days({}, {})", sub[Type.DATETIME](), st.one_of(days, st.just("i2"))),
        _fmt("datetime({})", sub[Type.DATE]()),
        _fmt("min({}, {})", sub[Type.DATETIME](), sub[Type.DATETIME]()),
    ]


def _no_composites(sub: dict[Type, Any]) -> list[st.SearchStrategy[str]]:
    return []


_COMPOSITES: dict[Type, Callable[[dict[Type, Any]], list[st.SearchStrategy[str]]]] = {
    Type.BOOL: _bool_composites,
    Type.INT: _int_composites,
    Type.FLOAT: _float_composites,
    Type.STRING: _string_composites,
    Type.DATE: _date_composites,
    Type.DATETIME: _datetime_composites,
    Type.LIST: _no_composites,
}
