"""The catalog's domain model: what a marketer declares, as pydantic models.

These models check each object on its own (types, ranges, names); what spans objects
(references, cycles, rules against schemas, templates, content fields) is checked by
`validate`. They are frozen: a validated catalog is a value, shared by the engine.

Times: a validity bound may be a date or a datetime. A start date means that day at 00:00
UTC; an end date includes that whole day; a datetime is an instant (naive means UTC).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from overture.rules.types import Type, parse_type

# -- names ---------------------------------------------------------------------------------
Name = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$"),
]
"""Channels, zones, placements, categories, policies, treatment rules, audiences."""

Code = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
"""Offer codes."""

Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")]
"""Names that rules and templates refer to: fields, segments, content fields, attributes."""


def _type(value: Any) -> Type:
    if isinstance(value, Type):
        return value
    if not isinstance(value, str):
        raise ValueError(f"a type is written as text (e.g. int), not {value!r}")
    return parse_type(value)


FieldType = Annotated[
    Type, BeforeValidator(_type), PlainSerializer(lambda t: t.value, return_type=str)
]


# -- numbers ---------------------------------------------------------------------------------
def _not_a_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, not {str(value).lower()}")
    return value


# finite: an infinite weight or score made NaN scores (0 × inf), ranked nowhere sensible
Number = Annotated[float, BeforeValidator(_not_a_bool), Field(allow_inf_nan=False)]
Count = Annotated[int, BeforeValidator(_not_a_bool)]

# -- times -----------------------------------------------------------------------------------
_DURATION = re.compile(r"^\s*(\d+)\s*(m|min|h|d|w)\s*$")
_UNITS = {"m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> dt.timedelta:
    """`30m`, `12h`, `7d`, `2w` as a timedelta; ValueError saying how to write one."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise ValueError(
            f"{text!r} is not a duration; write a positive number and a unit: 30m, 12h, 7d or 2w"
        )
    return dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _duration(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"a duration is written like 7d, 12h, 30m or 2w, not {value!r}")
    parse_duration(value)
    return value.strip()


Duration = Annotated[str, BeforeValidator(_duration)]


def _moment(value: Any) -> Any:
    """A date stays a date (a whole day) and a datetime an instant, also when written as
    text: 'YYYY-MM-DD' is a date. (Left to itself, pydantic reads that text as a datetime at
    midnight, which would cut the last day off an end date.)"""
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return dt.date.fromisoformat(text)
            return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"{value!r} is not a date (YYYY-MM-DD) or a datetime "
                "(YYYY-MM-DDTHH:MM:SS, UTC or with an offset)"
            ) from None
    if not isinstance(value, dt.date):  # not a number of seconds either: say a date
        raise ValueError(
            f"expected a date (YYYY-MM-DD) or a datetime (YYYY-MM-DDTHH:MM:SS), got {value!r}"
        )
    return value


def _naive_utc(value: dt.date) -> dt.date:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _json_moment(value: dt.date) -> str:
    """In JSON, a datetime says it is UTC (RFC 3339); a date is a date."""
    if isinstance(value, dt.datetime):
        return value.isoformat() + "Z"
    return value.isoformat()


Moment = Annotated[
    dt.datetime | dt.date,
    BeforeValidator(_moment),
    AfterValidator(_naive_utc),
    PlainSerializer(_json_moment, when_used="json"),
]


def window_start(value: dt.date | None) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime(value.year, value.month, value.day)


def window_end(value: dt.date | None) -> dt.datetime | None:
    """Exclusive end instant: an end date includes its whole day."""
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime(value.year, value.month, value.day) + dt.timedelta(days=1)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Windowed(_Model):
    start: Moment | None = None
    end: Moment | None = None

    @model_validator(mode="after")
    def _ordered(self) -> _Windowed:
        start, end = window_start(self.start), window_end(self.end)
        if start is not None and end is not None and start >= end:
            raise ValueError(f"start ({self.start}) must be before end ({self.end})")
        return self


# -- targeting -------------------------------------------------------------------------------
class Audience(_Model):
    """Who decisions are made for (customers, visitors…): an id field and a typed profile."""

    name: Name
    id_field: Identifier
    fields: dict[Identifier, FieldType]
    description: str = ""
    # The runtime looks a profile id up in this table of its database (a row per profile,
    # a column per field, keyed by id_field); None: requests carry the profile inline.
    profile_table: Identifier | None = None


# (?!.*\n): `$` also matches before a final newline, and msgspec searches with the pattern
EVENT_NAME_PATTERN = r"^(?!.*\n)[A-Za-z](?:[A-Za-z0-9_ \-]{0,62}[A-Za-z0-9_\-])?$"
EVENT_NAME_RULE = "a letter, then letters, digits, _, - or spaces (not at the end); 64 at most"


def event_name_problem(name: str) -> str | None:
    """Why `name` is no event name (None: it is one). Event names are as Interact's: a
    letter, then letters, digits, `_`, `-` or spaces ("Add To Cart", "page-view"), not
    ending with a space, 64 characters at most; compared ignoring case. The same rule holds
    in the catalog (a channel's events) and in the runtime (posted events, both APIs)."""
    if re.fullmatch(EVENT_NAME_PATTERN, name):
        return None
    control = next((c for c in name if not c.isprintable()), None)
    if control is not None:
        return f"it holds a control character or an invisible one (U+{ord(control):04X})"
    if len(name) > 64:
        return f"it has {len(name)} characters, more than 64 characters"
    if not name[:1].isascii() or not name[:1].isalpha():
        return "it must start with a letter (A-Z, a-z)"
    if name.endswith(" "):
        return "it must not end with a space"
    return "it may hold only letters (A-Z, a-z), digits, _, - and spaces"


def _event_name(name: str) -> str:
    problem = event_name_problem(name)
    if problem is not None:
        raise ValueError(f"{name!r} is not an event name: {problem} ({EVENT_NAME_RULE})")
    return name


EventName = Annotated[
    str,
    AfterValidator(_event_name),
    WithJsonSchema(
        {"type": "string", "pattern": EVENT_NAME_PATTERN, "description": EVENT_NAME_RULE}
    ),
]
"""As Interact names events ("Add To Cart", "page-view"): see `event_name_problem`."""


class ChannelEvents(_Model):
    """Which event names log a contact, an acceptance or a rejection on a channel (Interact
    configures the same per interactive channel). Any other name is a custom event: stored
    in the history, counted by no policy."""

    presented: list[EventName] = Field(default_factory=lambda: ["presented", "contact"])
    accepted: list[EventName] = Field(default_factory=lambda: ["accepted", "accept"])
    rejected: list[EventName] = Field(default_factory=lambda: ["rejected", "reject"])

    @model_validator(mode="after")
    def _distinct(self) -> ChannelEvents:
        seen: dict[str, str] = {}
        for kind in ("presented", "accepted", "rejected"):
            for name in getattr(self, kind):
                if name.lower() in seen:
                    raise ValueError(
                        f"event name {name!r} is listed twice ({seen[name.lower()]} and "
                        f"{kind}); names are compared ignoring case and log one thing each"
                    )
                seen[name.lower()] = kind
        return self

    def kind_of(self, name: str) -> str:
        """presented, accepted, rejected or custom."""
        lowered = name.lower()
        for kind in ("presented", "accepted", "rejected"):
            if any(lowered == n.lower() for n in getattr(self, kind)):
                return kind
        return "custom"


class Channel(_Model):
    name: Name
    description: str = ""
    events: ChannelEvents = Field(default_factory=ChannelEvents)


class Zone(_Model):
    name: Name
    description: str = ""


class ContentField(_Model):
    required: StrictBool = False
    description: str = ""


class Placement(_Model):
    """Where offers are shown (Interact's interaction point, Adobe's offer space)."""

    name: Name
    channel: Name
    zone: Name | None = None
    description: str = ""
    max_offers: Count = Field(1, ge=1, le=100)
    max_per_category: Count | None = Field(None, ge=1)
    fields: dict[Identifier, ContentField] = Field(default_factory=dict)
    fallback_offers: list[Code] = Field(default_factory=list)
    default_content: dict[Identifier, str] = Field(default_factory=dict)
    render: Literal["text", "html"] = "text"


class Multiplier(_Windowed):
    """Multiplies the weight of every offer in a category, during a period."""

    value: Number = Field(gt=0)


class Category(_Windowed):
    """A node of the offer tree. Children inherit the audience, the eligibility rule (ANDed
    down the chain), the validity window (the most restrictive wins), themes, policies and
    multipliers; a disabled category disables its whole subtree."""

    name: Name
    parent: Name | None = None
    description: str = ""
    audience: Name | None = None
    eligibility: str | None = None
    themes: list[str] = Field(default_factory=list)
    policies: list[Name] = Field(default_factory=list)
    multipliers: list[Multiplier] = Field(default_factory=list)
    fallback: StrictBool = False
    enabled: StrictBool = True


class Weight(_Windowed):
    """One candidate weight of an offer: the highest applicable one is kept; 0 is ineligible."""

    value: Number | str
    placements: list[Name] = Field(default_factory=list)
    rule: str | None = None


AttributeValue = str | bool | int | float | dt.datetime | dt.date | list[str]


_PLACEMENTS_SCHEMA: dict[str, Any] = {
    "description": "The placements the offer is valid on: a list of names (the same content "
    "everywhere), or a mapping of names to content overrides (or null: none)",
    "anyOf": [
        {"type": "array", "items": {"type": "string"}},
        {
            "type": "object",
            "additionalProperties": {
                "anyOf": [
                    {"type": "object", "additionalProperties": {"type": "string"}},
                    {"type": "null"},
                ]
            },
        },
    ],
}


def _placements_shorthand(value: Any) -> Any:
    """`placements: [a, b]` (the same content everywhere) means `{a: {}, b: {}}`; in the
    mapping form, `a:` with nothing after it means no overrides."""
    if isinstance(value, list):
        if not all(isinstance(p, str) for p in value):
            raise ValueError(
                "placements is a list of placement names, or a mapping of "
                "placement names to content overrides"
            )
        twice = sorted({p for p in value if value.count(p) > 1})
        if twice:
            raise ValueError(f"placement {twice[0]!r} is listed twice")
        return {p: {} for p in value}
    if isinstance(value, dict):
        return {k: {} if v is None else v for k, v in value.items()}
    return value


class Offer(_Windowed):
    code: Code
    name: str = Field(min_length=1)
    category: Name
    description: str = ""
    eligibility: str | None = None
    weights: list[Weight] = Field(default_factory=list)
    value: Number = 0.0
    themes: list[str] = Field(default_factory=list)
    placements: Annotated[
        dict[Name, dict[Identifier, str]],
        BeforeValidator(_placements_shorthand),
        WithJsonSchema(_PLACEMENTS_SCHEMA),
    ] = Field(default_factory=dict)
    content: dict[Identifier, str] = Field(default_factory=dict)
    attributes: dict[Identifier, AttributeValue] = Field(default_factory=dict)
    status: Literal["active", "inactive"] = "active"

    @model_validator(mode="before")
    @classmethod
    def _weight_shorthand(cls, data: Any) -> Any:
        """`weight: 2` for a single unconditional weight."""
        if not isinstance(data, dict) or "weight" not in data:
            return data
        data = dict(data)
        if "weights" in data:
            raise ValueError("give either weight or weights, not both")
        data["weights"] = [{"value": data.pop("weight")}]
        return data

    def content_for(self, placement: str) -> dict[str, str]:
        """The offer's content on a placement: its common content, overridden per placement."""
        return {**self.content, **self.placements.get(placement, {})}


class Segment(_Model):
    """A named condition on profile and context; rules read it as `segment.<name>`."""

    name: Identifier
    rule: str
    description: str = ""
    audience: Name | None = None


class TreatmentRule(_Model):
    """Segment → offers (or a whole category), with a marketing score (Interact's model)."""

    name: Name
    segment: Identifier
    offers: list[Code] = Field(default_factory=list)
    category: Name | None = None
    zone: Name | None = None
    score: Number = Field(50.0, ge=0)
    eligibility: str | None = None
    score_expression: str | None = None
    description: str = ""

    @model_validator(mode="after")
    def _targets(self) -> TreatmentRule:
        if not self.offers and self.category is None:
            raise ValueError("a treatment rule targets offers or a category: give one of them")
        return self


# -- presentation policies (typology rules) ------------------------------------------------
class _Policy(_Model):
    """Where a policy applies: channels and placements (empty: all), and which offers
    (categories, offers, and categories that list it; all of them empty: every offer)."""

    name: Name
    description: str = ""
    channels: list[Name] = Field(default_factory=list)
    placements: list[Name] = Field(default_factory=list)
    categories: list[Name] = Field(default_factory=list)
    offers: list[Code] = Field(default_factory=list)


class FilterPolicy(_Policy):
    """Keeps an offer only where `rule` is true."""

    kind: Literal["filter"]
    rule: str


class CappingPolicy(_Policy):
    """At most `limit` presentations to one profile per `window`, counted per offer, per
    category or over the whole channel."""

    kind: Literal["capping"]
    limit: Count = Field(ge=1)
    window: Duration
    per: Literal["offer", "category", "channel"] = "offer"


class SuppressionPolicy(_Policy):
    """Drops an offer for a profile once it was accepted/rejected `times` times within
    `period` (no period: ever)."""

    kind: Literal["suppression"]
    after: Literal["accepted", "rejected", "responded"]
    times: Count = Field(1, ge=1)
    period: Duration | None = None
    per: Literal["offer", "category"] = "offer"


class InventoryPolicy(_Policy):
    """At most `limit` presentations of each offer in total, per UTC day or overall."""

    kind: Literal["inventory"]
    limit: Count = Field(ge=1)
    per: Literal["day", "total"] = "day"


Policy = Annotated[
    FilterPolicy | CappingPolicy | SuppressionPolicy | InventoryPolicy, Field(discriminator="kind")
]


class Settings(_Model):
    default_score: Number = Field(
        50.0, ge=0, description="Treatment score of an offer no treatment rule targets."
    )


class Catalog(_Model):
    """A whole catalog: what `overture validate` checks and `build_plan` compiles."""

    name: str = "catalog"
    description: str = ""
    settings: Settings = Field(default_factory=Settings)
    context: dict[Identifier, FieldType] = Field(default_factory=dict)
    offer_attributes: dict[Identifier, FieldType] = Field(default_factory=dict)
    audiences: list[Audience] = Field(default_factory=list)
    channels: list[Channel] = Field(default_factory=list)
    zones: list[Zone] = Field(default_factory=list)
    placements: list[Placement] = Field(default_factory=list)
    categories: list[Category] = Field(default_factory=list)
    offers: list[Offer] = Field(default_factory=list)
    segments: list[Segment] = Field(default_factory=list)
    treatment_rules: list[TreatmentRule] = Field(default_factory=list)
    policies: list[Policy] = Field(default_factory=list)


SECTIONS: dict[str, type[BaseModel]] = {
    "audiences": Audience,
    "channels": Channel,
    "zones": Zone,
    "placements": Placement,
    "categories": Category,
    "offers": Offer,
    "segments": Segment,
    "treatment_rules": TreatmentRule,
}
"""List sections and their item model (policies are a union, handled apart)."""
MAPPING_SECTIONS = ("settings", "context", "offer_attributes")
SCALAR_SECTIONS = ("name", "description")
