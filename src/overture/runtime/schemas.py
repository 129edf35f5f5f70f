"""The native runtime API's request bodies, as msgspec structs.

msgspec decodes and validates a body in one pass, in C, into these typed structs: the
runtime's hot path cannot afford a per-request validation layer written in Python. Unknown
fields are refused (a misspelt `placments` must not silently ask for nothing), and the
error names the field: "Object contains unknown field `placments` - at `$`".
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from overture.catalog.model import EVENT_NAME_PATTERN, EVENT_NAME_RULE

Text = Annotated[str, Meta(min_length=1, max_length=128)]
Name = Annotated[str, Meta(min_length=1, max_length=64)]
# As the catalog names a channel's events (overture.catalog.model.event_name_problem)
EventName = Annotated[str, Meta(pattern=EVENT_NAME_PATTERN, description=EVENT_NAME_RULE)]
Count = Annotated[int, Meta(ge=1, le=100)]


class _Body(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    pass


class PlacementAsk(_Body):
    placement: Name
    count: Count | None = None  # None: the placement's max_offers


class DecisionIn(_Body):
    """Ask for offers on one or more placements (no offer twice across them)."""

    placements: Annotated[list[PlacementAsk], Meta(min_length=1, max_length=20)]
    audience: Name | None = None
    profile_id: Text | None = None
    profile: dict[str, Any] = {}
    context: dict[str, Any] = {}
    categories: Annotated[list[Name], Meta(max_length=100)] = []
    themes: Annotated[list[Name], Meta(max_length=100)] = []
    session_id: Text | None = None
    explain: bool = False
    record: bool = True  # False: a test request; nothing is stored or counted
    at: dt.datetime | None = None  # only a demo server takes it (demo traffic in past days)


class EventIn(_Body):
    """Something a touchpoint reports: by tracking code, or by offer and profile."""

    name: EventName
    event_id: Text | None = None  # idempotency: the same id is stored once
    tracking_code: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    offer: Name | None = None
    profile_id: Text | None = None
    audience: Name | None = None
    channel: Name | None = None
    placement: Name | None = None
    session_id: Text | None = None
    at: dt.datetime | None = None
    attributes: dict[str, Any] = {}


class EventsIn(_Body):
    events: Annotated[list[EventIn], Meta(min_length=1, max_length=1000)]


class SessionIn(_Body):
    session_id: Text | None = None  # chosen by the client, as in Interact; else generated
    audience: Name | None = None
    profile_id: Text | None = None
    profile: dict[str, Any] = {}
    context: dict[str, Any] = {}
    rely_on_existing: bool = False  # keep an existing session of that id as it is


class AudienceIn(_Body):
    audience: Name | None = None
    profile_id: Text | None = None
    profile: dict[str, Any] = {}
    context: dict[str, Any] = {}


# -- answers (documented in the OpenAPI description; tests hold the answers to them) ------
class OfferOut(msgspec.Struct):
    offer: str
    name: str
    category: str
    rank: int
    score: float
    content: dict[str, str]
    tracking_code: str
    fallback: bool


class TraceOut(msgspec.Struct, omit_defaults=True):
    offer: str
    step: str
    reason: str
    score: float | None = None
    selected: bool = False


class PlacementOut(msgspec.Struct, omit_defaults=True):
    placement: str
    channel: str
    offers: list[OfferOut]
    default_content: dict[str, str] | None
    explain: list[TraceOut] | None = None


class RuleErrorOut(msgspec.Struct):
    offer_code: str
    rule: str
    message: str


class DecisionOut(msgspec.Struct, omit_defaults=True):
    environment: str
    deployment: int
    audience: str
    profile_id: str | None
    decided_at: str
    recorded: bool
    placements: list[PlacementOut]
    session_id: str | None = None
    rule_errors: list[RuleErrorOut] = []
    warnings: list[str] = []
    # decided with less than usual, and why: "counts" (the offers policies count were left
    # out: Redis down or its counters being rebuilt), "profile" (a profile read earlier)
    degraded: list[str] = []


class EventResultOut(msgspec.Struct, omit_defaults=True):
    event_id: str
    status: str  # stored, duplicate or rejected
    kind: str | None = None  # presented, accepted, rejected or custom
    error: str | None = None


class EventsOut(msgspec.Struct):
    stored: int
    duplicates: int
    rejected: int
    results: list[EventResultOut]


class SessionOut(msgspec.Struct, omit_defaults=True):
    session_id: str
    environment: str
    audience: str
    profile_id: str | None
    context: dict[str, Any]
    responded: list[str]
    last: list[str]
    warnings: list[str] = []


class HistoryEventOut(msgspec.Struct, omit_defaults=True):
    event_id: str
    name: str
    kind: str  # presented, accepted, rejected or custom
    at: str
    offer: str | None
    attributes: dict[str, Any] = {}


class HistoryPropositionOut(msgspec.Struct):
    tracking_code: str
    decided_at: str
    offer: str
    placement: str
    channel: str
    rank: int
    score: float
    fallback: bool
    deployment: int
    session_id: str | None
    events: list[HistoryEventOut]


class HistoryOut(msgspec.Struct):
    """A profile's propositions (newest first) with their events, and the events that
    named no proposition."""

    environment: str
    profile_id: str
    propositions: list[HistoryPropositionOut]
    other_events: list[HistoryEventOut]
