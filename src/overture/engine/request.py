"""What a decision is asked with and what it answers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, NamedTuple

Step = Literal[
    "candidates",
    "eligibility",
    "policies",
    "score",
    "arbitration",
    "render",
    "selected",
    "fallback",
]


class RequestError(ValueError):
    """A request the engine cannot answer as asked (unknown placement, a profile value of
    the wrong type…). `problems` lists every one, each saying what to change."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True, slots=True)
class PlacementRequest:
    placement: str
    count: int | None = None  # None: the placement's max_offers


@dataclass(frozen=True)
class DecisionRequest:
    """Ask for offers on one or more placements (deduplicated across them, in order).

    `profile` holds attributes (typed or JSON-like values; they are coerced to the audience
    schema); `profile_id` identifies the profile for capping and suppression, and defaults
    to the audience's id field in `profile`. Without either, the request is anonymous.
    `categories` and `themes` restrict the catalog, as Adobe's engine calls do; offers in
    `exclude` are not proposed (a session excludes those accepted or rejected in it, as
    Interact does).
    """

    placements: tuple[PlacementRequest, ...]
    audience: str | None = None
    profile: Mapping[str, Any] = field(default_factory=dict)
    profile_id: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    categories: frozenset[str] = frozenset()
    themes: frozenset[str] = frozenset()
    now: dt.datetime | None = None
    explain: bool = False
    exclude: frozenset[str] = frozenset()
    segments: bool = False  # say which segments the profile is in (Decision.segments)

    @classmethod
    def for_placements(
        cls, placements: Iterable[str | PlacementRequest | tuple[str, int]], **kwargs: Any
    ) -> DecisionRequest:
        """Convenience: placements given as names, (name, count) pairs or PlacementRequests."""
        reqs = []
        for p in placements:
            if isinstance(p, PlacementRequest):
                reqs.append(p)
            elif isinstance(p, tuple):
                reqs.append(PlacementRequest(p[0], p[1]))
            else:
                reqs.append(PlacementRequest(p))
        for key in ("categories", "themes", "exclude"):
            if key in kwargs:
                kwargs[key] = frozenset(kwargs[key])
        return cls(tuple(reqs), **kwargs)


class Proposition(NamedTuple):
    """One offer chosen for a placement. Events reference it by its tracking code.

    A NamedTuple rather than a frozen dataclass: as immutable, and built four times faster,
    which counts on the hot path."""

    placement: str
    rank: int
    offer_code: str
    offer_name: str
    category: str
    score: float
    content: dict[str, str]
    tracking_code: str
    fallback: bool = False
    probability: float = 1.0  # deterministic arbitration; exploration will lower it


@dataclass(frozen=True, slots=True)
class Trace:
    """For explain: what happened to one candidate, and why."""

    offer_code: str
    step: Step
    reason: str
    score: float | None = None
    selected: bool = False


@dataclass(frozen=True, slots=True)
class RuleFailure:
    """A rule that raised at run time: the offer it guarded was treated as ineligible."""

    offer_code: str
    rule: str  # "eligibility", "category lending", "weight", "policy card_fatigue", ...
    message: str


class PlacementDecision(NamedTuple):
    placement: str
    channel: str
    propositions: tuple[Proposition, ...]
    default_content: dict[str, str] | None = None  # when no offer at all was chosen
    explain: tuple[Trace, ...] | None = None


class Decision(NamedTuple):
    """The answer to a DecisionRequest. (The answer types are NamedTuples: immutable, and
    cheap to build once per decision.)"""

    audience: str
    profile_id: str | None
    now: dt.datetime
    placements: tuple[PlacementDecision, ...]
    rule_errors: tuple[RuleFailure, ...] = ()
    # the audience's segments the profile was in, when the request asked (`segments`) and
    # an offer was proposed: what the history records for the reports by segment
    segments: tuple[str, ...] = ()

    @property
    def propositions(self) -> list[Proposition]:
        return [p for pd in self.placements for p in pd.propositions]

    def to_dict(
        self,
        *,
        environment: str | None = None,
        deployment: int | None = None,
        recorded: bool = False,
        session_id: str | None = None,
        warnings: Iterable[str] = (),
    ) -> dict[str, Any]:
        """JSON-ready data, in the shape the runtime API answers (POST /v1/decisions; its
        DecisionOut): the one definition of that shape, for the runtime and the command
        line alike. `environment` and `deployment` say which deployment decided (None:
        none did, as with a catalog folder), `recorded` whether the propositions were
        recorded; `session_id`, `rule_errors` and `warnings` are there only when there are
        any."""
        placements = []
        for pd in self.placements:
            item: dict[str, Any] = {
                "placement": pd.placement,
                "channel": pd.channel,
                "offers": [
                    {
                        "offer": p.offer_code,
                        "name": p.offer_name,
                        "category": p.category,
                        "rank": p.rank,
                        "score": p.score,
                        "content": p.content,
                        "tracking_code": p.tracking_code,
                        "fallback": p.fallback,
                    }
                    for p in pd.propositions
                ],
                "default_content": pd.default_content,
            }
            if pd.explain is not None:
                item["explain"] = [_trace(t) for t in pd.explain]
            placements.append(item)
        answer: dict[str, Any] = {
            "environment": environment,
            "deployment": deployment,
            "audience": self.audience,
            "profile_id": self.profile_id,
            "decided_at": self.now.isoformat() + "Z",  # naive UTC
            "recorded": recorded,
            "placements": placements,
        }
        if session_id is not None:
            answer["session_id"] = session_id
        if self.rule_errors:
            answer["rule_errors"] = [asdict(e) for e in self.rule_errors]
        warnings = list(warnings)
        if warnings:
            answer["warnings"] = warnings
        return answer


def _trace(t: Trace) -> dict[str, Any]:
    item: dict[str, Any] = {"offer": t.offer_code, "step": t.step, "reason": t.reason}
    if t.score is not None:
        item["score"] = t.score
    if t.selected:
        item["selected"] = True
    return item
