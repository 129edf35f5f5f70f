"""Coerce request values (JSON-like, or typed) to the audience and context schemas.

Touchpoints send what they have: numbers as strings, dates as ISO text, ids as numbers.
Coercion accepts what is unambiguous and refuses the rest with a message per field; it
runs once per request so that compiled rules can assume well-typed values. Unknown fields
are dropped (a profile table may have more columns than the schema declares).

Odd data reads as the batch reads it (overture.batch.population, docs/batch.md "Odd data"),
so that real time and batch decide alike on every input:

- a float is finite: NaN, +inf and -inf are null (so is a number past a double's range);
- an int is 64-bit: a value outside [-2**63, 2**63 - 1] is null (NaN and ±inf too);
- a list holds no nulls: null items are dropped (an empty list stays empty);
- a datetime is naive UTC: a zone-aware one is converted, and a date taken from one is
  its UTC date.

A `Coercer` is built once per schema: per request it costs a dictionary lookup and a type
test per field (and, for numbers, a range test).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from typing import Any

from overture.rules.functions import FLOAT_MAX, INT64_MAX, INT64_MIN, parse_datetime
from overture.rules.types import Type


class Coercer:
    def __init__(self, schema: Mapping[str, Type], what: str) -> None:
        self.what = what  # "profile" or "context", for messages
        # (type passed as is, its range (None: any value), converter, type name)
        self._fields: dict[
            str, tuple[type | None, tuple[Any, Any] | None, Callable[[Any], Any], str]
        ] = {
            name: (_EXACT.get(t), _RANGE.get(t), _COERCE[t], t.value) for name, t in schema.items()
        }

    def __call__(self, values: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """(coerced values, problems)."""
        out: dict[str, Any] = {}
        problems: list[str] = []
        fields = self._fields
        for name, value in values.items():
            spec = fields.get(name)
            if spec is None:
                continue
            exact, bounds, convert, type_name = spec
            if value is None or (
                type(value) is exact and (bounds is None or bounds[0] <= value <= bounds[1])
            ):  # (NaN is within no bounds)
                out[name] = value
                continue
            try:
                out[name] = convert(value)
            except (TypeError, ValueError, OverflowError):
                problems.append(f"{self.what}.{name}: expected {type_name}, got {value!r}")
        return out, problems


# the language's ranges (rules/functions.py): a 64-bit integer, as BIGINT in the batch
INT_MIN, INT_MAX = INT64_MIN, INT64_MAX


def _int(v: Any) -> int | None:
    """An integer, or null when it does not fit 64 bits (NaN and ±inf: null)."""
    if isinstance(v, bool):
        raise TypeError
    if isinstance(v, float):
        if not math.isfinite(v):
            return None
        if not v.is_integer():
            raise ValueError
        i = int(v)
    elif isinstance(v, str):
        i = int(v.strip())
    elif isinstance(v, int):
        i = v
    else:
        raise TypeError
    return i if INT_MIN <= i <= INT_MAX else None


def _float(v: Any) -> float | None:
    """A finite float, or null (NaN, ±inf, and an int past a double's range)."""
    if isinstance(v, bool):
        raise TypeError
    if isinstance(v, (int, float, str)):
        try:
            f = float(v)
        except OverflowError:  # an int past 1.8e308: infinite as a double
            return None
        return f if math.isfinite(f) else None
    raise TypeError


def _string(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise TypeError
    return str(v)


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in ("true", "false"):
        return v.strip().lower() == "true"
    raise TypeError


def _date(v: Any) -> dt.date:
    if isinstance(v, dt.datetime):
        return _datetime(v).date()  # a zone-aware one: its UTC date
    if isinstance(v, dt.date):
        return v
    if isinstance(v, str):
        text = v.strip()
        return dt.date.fromisoformat(text) if len(text) == 10 else parse_datetime(text).date()
    raise TypeError


def _datetime(v: Any) -> dt.datetime:
    if isinstance(v, dt.datetime):
        return v.astimezone(dt.UTC).replace(tzinfo=None) if v.tzinfo else v
    if isinstance(v, dt.date):
        return dt.datetime(v.year, v.month, v.day)
    if isinstance(v, str):
        return parse_datetime(v.strip())
    raise TypeError


def _list(v: Any) -> list[str]:
    if isinstance(v, str) or not isinstance(v, (list, tuple, set, frozenset)):
        raise TypeError
    return [x if isinstance(x, str) else _string(x) for x in v if x is not None]


# Values of exactly these types pass as they are when within their _RANGE (a NaN float is
# within no range). A list is always converted (its items must be strings); a datetime is
# always converted (it may be zone-aware) and is not passed as a date.
_EXACT: dict[Type, type] = {
    Type.STRING: str,
    Type.INT: int,
    Type.FLOAT: float,
    Type.BOOL: bool,
    Type.DATE: dt.date,
}
_RANGE: dict[Type, tuple[Any, Any]] = {
    Type.INT: (INT_MIN, INT_MAX),
    Type.FLOAT: (-FLOAT_MAX, FLOAT_MAX),
}
_COERCE: dict[Type, Callable[[Any], Any]] = {
    Type.STRING: _string,
    Type.INT: _int,
    Type.FLOAT: _float,
    Type.BOOL: _bool,
    Type.DATE: _date,
    Type.DATETIME: _datetime,
    Type.LIST: _list,
}
