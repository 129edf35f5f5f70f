"""Types of the rule language and the schema a rule is checked against."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple


class Type(enum.Enum):
    """A value type. Every field of a profile, a context or an offer has one."""

    STRING = "string"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    DATE = "date"
    DATETIME = "datetime"
    LIST = "list[string]"
    NULL = "null"  # the type of the literal None; compatible with every other type

    @property
    def is_numeric(self) -> bool:
        return self in (Type.INT, Type.FLOAT)

    def __str__(self) -> str:
        return self.value


# Spellings accepted in schemas (YAML), mapped to the canonical type.
TYPE_NAMES: Mapping[str, Type] = MappingProxyType(
    {
        "string": Type.STRING,
        "str": Type.STRING,
        "text": Type.STRING,
        "int": Type.INT,
        "integer": Type.INT,
        "float": Type.FLOAT,
        "double": Type.FLOAT,
        "number": Type.FLOAT,
        "bool": Type.BOOL,
        "boolean": Type.BOOL,
        "date": Type.DATE,
        "datetime": Type.DATETIME,
        "timestamp": Type.DATETIME,
        "list[string]": Type.LIST,
        "list": Type.LIST,
    }
)


def parse_type(name: str) -> Type:
    """The type a schema spelling names; ValueError listing the accepted ones otherwise."""
    try:
        return TYPE_NAMES[name.strip().lower()]
    except KeyError:
        accepted = "string, int, float, bool, date, datetime, list[string]"
        raise ValueError(f"unknown type {name!r}; use one of: {accepted}") from None


PROFILE = "profile"
CONTEXT = "context"
SEGMENT = "segment"
OFFER = "offer"
TREATMENT = "treatment"
NAMESPACES = (PROFILE, CONTEXT, SEGMENT, OFFER, TREATMENT)


@dataclass(frozen=True)
class Schema:
    """What a rule may refer to.

    Bare names are profile fields; `context.x`, `segment.x`, `offer.x` and `treatment.x` are
    looked up in their namespace. A namespace that is absent (None) is not available in this
    kind of rule, which gives a better message than an unknown field. `constants` are names
    whose value is known when the rule is compiled (a treatment rule's own score), folded in.
    """

    profile: Mapping[str, Type] = field(default_factory=dict)
    context: Mapping[str, Type] | None = field(default_factory=dict)
    segments: frozenset[str] | None = frozenset()
    offer: Mapping[str, Type] | None = None
    constants: Mapping[str, tuple[Type, object]] = field(default_factory=dict)

    def namespace(self, name: str) -> Mapping[str, Type] | None:
        if name == PROFILE:
            return self.profile
        if name == CONTEXT:
            return self.context
        if name == SEGMENT:
            return None if self.segments is None else dict.fromkeys(self.segments, Type.BOOL)
        if name == OFFER:
            return self.offer
        return None


class Instant(NamedTuple):
    """When a rule is evaluated: `today()` and `now()` read it, so a decision (or a batch run,
    or a simulation at a past date) is a pure function of its inputs. Naive UTC."""

    now: dt.datetime
    today: dt.date

    @classmethod
    def at(cls, now: dt.datetime) -> Instant:
        if now.tzinfo is not None:
            now = now.astimezone(dt.UTC).replace(tzinfo=None)
        return cls(now, now.date())
