"""Coerce request values (JSON-like, or typed) to the audience and context schemas.

Touchpoints send what they have: numbers as strings, dates as ISO text, ids as numbers.
Coercion accepts what is unambiguous and refuses the rest with a message per field; it
runs once per request so that compiled rules can assume well-typed values. Unknown fields
are dropped (a profile table may have more columns than the schema declares), NaN is null.
A `Coercer` is built once per schema: per request it costs a dictionary lookup and a type
test per field.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from typing import Any

from overture.rules.functions import parse_datetime
from overture.rules.types import Type


class Coercer:
    def __init__(self, schema: Mapping[str, Type], what: str) -> None:
        self.what = what  # "profile" or "context", for messages
        # (type passed as is, converter, type name)
        self._fields: dict[str, tuple[type | None, Callable[[Any], Any], str]] = {
            name: (_EXACT.get(t), _COERCE[t], t.value) for name, t in schema.items()
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
            exact, convert, type_name = spec
            if value is None or (type(value) is exact and value == value):  # noqa: PLR0124 - NaN
                out[name] = value
                continue
            try:
                out[name] = convert(value)
            except (TypeError, ValueError, OverflowError):
                problems.append(f"{self.what}.{name}: expected {type_name}, got {value!r}")
        return out, problems


def _int(v: Any) -> int:
    if isinstance(v, bool):
        raise TypeError
    if isinstance(v, float):
        if not v.is_integer():
            raise ValueError
        return int(v)
    if isinstance(v, str):
        return int(v.strip())
    if isinstance(v, int):
        return v
    raise TypeError


def _float(v: Any) -> float | None:
    if isinstance(v, bool):
        raise TypeError
    if isinstance(v, (int, float, str)):
        f = float(v)
        return None if math.isnan(f) else f
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
        return v.date()
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


# Values of exactly these types pass as they are, but a NaN float (it becomes null). A list
# is always converted (its items must be strings); a datetime is not passed as a date.
_EXACT: dict[Type, type] = {
    Type.STRING: str,
    Type.INT: int,
    Type.FLOAT: float,
    Type.BOOL: bool,
    Type.DATE: dt.date,
    Type.DATETIME: dt.datetime,
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
