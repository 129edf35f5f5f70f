"""The compiled form of a catalog: plain immutable data the pipeline runs on.

`plan.py` builds these from a catalog; `pipeline.py` decides with them. Everything here
is resolved for speed: rules are closures, content is compiled, and each offer's
candidate on a placement carries exactly the weights, treatment rules and policies that
apply to it there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from overture.engine.profile import Coercer
from overture.engine.render import Renderer
from overture.rules import Type

Window = tuple[dt.datetime | None, dt.datetime | None]


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule ready to run, and what it reads (to know whether its result can be shared)."""

    source: str
    run: Callable[..., Any]  # Predicate or Evaluator
    uses_offer: bool


@dataclass(frozen=True, slots=True)
class CompiledWeight:
    static: float | None
    expression: CompiledRule | None
    window: Window
    rule: CompiledRule | None


@dataclass(frozen=True, slots=True)
class CompiledTreatment:
    name: str
    segment: str
    zone: str | None
    score: float
    eligibility: CompiledRule | None
    score_expression: CompiledRule | None


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    name: str
    kind: Literal["filter", "capping", "suppression", "inventory"]
    rule: CompiledRule | None = None
    limit: int = 0
    window: dt.timedelta | None = None
    window_text: str = ""  # as the catalog wrote it: "7d"
    per: str = "offer"
    events: tuple[str, ...] = ("presented",)

    def describe(self) -> str:
        return f"{self.kind} policy {self.name!r}"


@dataclass(frozen=True, slots=True)
class CompiledOffer:
    code: str
    name: str
    category: str
    categories: tuple[str, ...]  # the category and its ancestors, nearest first
    audience: str
    window: Window  # effective: the offer's and its categories', most restrictive
    category_rules: tuple[tuple[str, CompiledRule], ...]  # root first
    eligibility: CompiledRule | None
    value: float
    themes: frozenset[str]
    multipliers: tuple[tuple[float, Window], ...]
    treatments: tuple[CompiledTreatment, ...]
    targeted: bool
    namespace: Mapping[str, Any]  # offer.* values for rules and templates


@dataclass(frozen=True, slots=True)
class Candidate:
    """An offer as a candidate on one placement: what applies to it there, resolved."""

    offer: CompiledOffer
    static_weight: float | None  # set when the offer has one unconditional numeric weight
    weights: tuple[CompiledWeight, ...]
    treatments: tuple[CompiledTreatment, ...]  # those of the offer valid in this zone
    # Those with a condition or a score expression; the plain ones are in treatment_group.
    conditional_treatments: tuple[CompiledTreatment, ...]
    policies: tuple[tuple[CompiledPolicy, str], ...]  # with the capping key on this placement
    budgets: tuple[tuple[str, str], ...]  # (policy, key) of its capping and inventory policies
    content: tuple[tuple[str, Renderer], ...]
    fixed_score: float | None  # when nothing about the request can change the score
    # When the score is the static weight × the treatment group's score (targeted by plain
    # treatment rules only, no multipliers): the ranking loop computes it inline.
    group_scored: bool
    order: int  # tie-break rank on the placement: higher business value, then code
    # Candidates whose plain treatment rules are the same share a group, so that a request
    # computes each group's treatment score once (-1: no plain treatment rules).
    treatment_group: int = -1


ScoringRow = tuple["Candidate", dt.datetime | None, dt.datetime | None, int, float, int]
"""What the ranking loop reads of a candidate, unpacked in one step: (candidate, start,
end, kind, weight, order). kind >= 0 is a treatment group (score = weight × the group's
score), -1 means score it in full, -2 means weight is the fixed score."""
FULL, FIXED = -1, -2


def scoring_row(cand: Candidate) -> ScoringRow:
    start, end = cand.offer.window
    if cand.fixed_score is not None:
        return (cand, start, end, FIXED, cand.fixed_score, cand.order)
    if cand.group_scored:
        assert cand.static_weight is not None
        return (cand, start, end, cand.treatment_group, cand.static_weight, cand.order)
    return (cand, start, end, FULL, 0.0, cand.order)


@dataclass(frozen=True, slots=True)
class CompiledPlacement:
    name: str
    channel: str
    zone: str | None
    max_offers: int
    max_per_category: int | None
    candidates: Mapping[str, tuple[Candidate, ...]]  # by audience
    # The same candidates split for ranking: those with a fixed score, already sorted as
    # (-score, order, candidate), and those scored per request.
    fixed: Mapping[str, tuple[tuple[float, int, Candidate], ...]]
    dynamic: Mapping[str, tuple[ScoringRow, ...]]
    every: Mapping[str, tuple[ScoringRow, ...]]  # all candidates as rows (with a learner)
    fallbacks: Mapping[str, tuple[Candidate, ...]]  # by audience, in fill order
    default_content: tuple[tuple[str, Renderer], ...]
    variables: Mapping[str, Any]  # `placement` as templates see it


@dataclass(frozen=True)
class AudienceInfo:
    name: str
    id_field: str
    fields: Mapping[str, Type]
    segments: Mapping[str, CompiledRule]
    coerce: Coercer
