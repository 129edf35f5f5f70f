"""The runtime's coercion of profile and context values (engine/profile.py), odd data
included: it must read them as the batch does (batch/population.py, docs/batch.md)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest

from overture.engine.profile import Coercer
from overture.rules import Type

COERCE = Coercer(
    {
        "f": Type.FLOAT,
        "i": Type.INT,
        "s": Type.STRING,
        "l": Type.LIST,
        "d": Type.DATE,
        "t": Type.DATETIME,
        "b": Type.BOOL,
    },
    "profile",
)


def one(field: str, value: Any) -> Any:
    out, problems = COERCE({field: value})
    assert not problems, problems
    return out[field]


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, -math.inf, "nan", "NaN", "inf", "-Infinity", "1e400", 10**400]
)
def test_a_float_that_is_not_finite_is_null(value: Any) -> None:
    assert one("f", value) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1.5, 1.5), (-1.7976931348623157e308, -1.7976931348623157e308), (3, 3.0), ("2.5", 2.5)],
)
def test_a_finite_float_passes(value: Any, expected: float) -> None:
    got = one("f", value)
    assert got == expected and type(got) is float


@pytest.mark.parametrize(
    "value",
    [2**63, -(2**63) - 1, 10**20, -(10**20), "99999999999999999999", 1e19, math.nan, math.inf],
)
def test_an_int_outside_64_bits_is_null(value: Any) -> None:
    assert one("i", value) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [(2**63 - 1, 2**63 - 1), (-(2**63), -(2**63)), ("-9223372036854775808", -(2**63)), (4.0, 4)],
)
def test_an_int_within_64_bits_passes(value: Any, expected: int) -> None:
    got = one("i", value)
    assert got == expected and type(got) is int


def test_an_int_that_is_no_integer_is_still_refused() -> None:
    _out, problems = COERCE({"i": 2.5, "f": "x"})
    assert problems == [
        "profile.i: expected int, got 2.5",
        "profile.f: expected float, got 'x'",
    ]


def test_null_list_items_are_dropped() -> None:
    assert one("l", ["a", None, "b", None]) == ["a", "b"]
    assert one("l", [None]) == []
    assert one("l", []) == []
    assert one("l", None) is None


def test_a_zone_aware_datetime_is_naive_utc() -> None:
    minus5 = dt.timezone(dt.timedelta(hours=-5))
    aware = dt.datetime(2026, 6, 14, 22, 0, tzinfo=minus5)
    assert one("t", aware) == dt.datetime(2026, 6, 15, 3, 0)
    assert one("t", aware).tzinfo is None
    assert one("t", dt.datetime(2026, 6, 15, 3, 0, tzinfo=dt.UTC)) == dt.datetime(2026, 6, 15, 3)
    assert one("t", "2026-06-14T22:00:00-05:00") == dt.datetime(2026, 6, 15, 3, 0)
    naive = dt.datetime(2026, 6, 14, 22, 0)
    assert one("t", naive) is naive


def test_a_date_from_a_zone_aware_datetime_is_its_utc_date() -> None:
    minus5 = dt.timezone(dt.timedelta(hours=-5))
    assert one("d", dt.datetime(2026, 6, 14, 22, 0, tzinfo=minus5)) == dt.date(2026, 6, 15)
    assert one("d", "2026-06-14T22:00:00-05:00") == dt.date(2026, 6, 15)
    assert one("d", dt.datetime(2026, 6, 14, 22, 0)) == dt.date(2026, 6, 14)
    assert one("d", dt.date(2026, 6, 14)) == dt.date(2026, 6, 14)


def test_ordinary_values_pass_as_they_are() -> None:
    values = {"f": 2.0, "i": 7, "s": "x", "b": True, "d": dt.date(2026, 1, 1), "l": ["a"]}
    out, problems = COERCE(values)
    assert out == values and not problems
