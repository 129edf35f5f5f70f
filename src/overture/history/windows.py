"""How far back a deployment's presentation policies look, and the inventory periods.

A deployment's policies decide which part of the history is worth reading: capping counts
presentations within its window, suppression counts responses within its period (or
ever), inventory counts an offer's presentations per UTC day or in total. `Lookback` is
the longest of each, derived once from the plan; every reader of the counted history (the
runtime's per-profile read, the batch's read of every profile, the Redis sets and their
rebuild) takes its bounds from it (counted.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from overture.engine import DecisionPlan
from overture.engine.history import inventory_since


@dataclass(frozen=True, slots=True)
class InventoryRule:
    """An inventory policy a proposition draws on: at most `limit` per `per`."""

    policy: str
    limit: int
    per: str  # day or total

    def period(self, now: dt.datetime) -> str:
        """The counter this rule draws on at `now`."""
        return inventory_period(inventory_since(self.per, now))


def inventory_period(since: dt.datetime | None) -> str:
    """The counter of an inventory counted from `since` (engine.history.inventory_since):
    its day, YYYY-MM-DD, or `total` for a lifetime limit."""
    return since.date().isoformat() if since is not None else "total"


@dataclass(frozen=True, slots=True)
class Lookback:
    """The longest windows a deployment's presentation policies count over.

    presented       the longest capping window: propositions and untracked presentations
                    within it count (None: no capping policy);
    responses       the longest suppression period: acceptances and rejections within it
                    count (None: no suppression with a period);
    responses_ever  some suppression has no period: every response counts.
    """

    presented: dt.timedelta | None = None
    responses: dt.timedelta | None = None
    responses_ever: bool = False

    @property
    def counts_anything(self) -> bool:
        """Whether any policy reads a profile's history (if not, nothing is read)."""
        return self.presented is not None or self.counts_responses

    @property
    def counts_responses(self) -> bool:
        return self.responses_ever or self.responses is not None

    def presented_since(self, now: dt.datetime) -> dt.datetime | None:
        """The first instant presentations count from at `now` (None: they do not count)."""
        return now - self.presented if self.presented is not None else None

    def responses_since(self, now: dt.datetime) -> dt.datetime | None:
        """The first instant responses count from at `now` (None: all of them, or none when
        `counts_responses` is false)."""
        if self.responses_ever or self.responses is None:
            return None
        return now - self.responses

    def retention(self) -> tuple[int, int]:
        """(seconds of presentations to keep, seconds to keep responses and the profile's
        version; 0 = for ever): how long the Redis counters keep what they count."""
        window = int(self.presented.total_seconds()) if self.presented is not None else 0
        if self.responses_ever:
            return window, 0
        responses = int(self.responses.total_seconds()) if self.responses is not None else 0
        return window, max(window, responses)

    @classmethod
    def of(cls, plan: DecisionPlan) -> Lookback:
        presented: dt.timedelta | None = None
        responses: dt.timedelta | None = None
        ever = False
        for placement in plan.placements.values():
            for candidates in placement.candidates.values():  # (fallbacks among them)
                for cand in candidates:
                    for policy, _key in cand.policies:
                        if policy.kind == "capping" and policy.window is not None:
                            presented = max(presented or policy.window, policy.window)
                        elif policy.kind == "suppression":
                            if policy.window is None:
                                ever = True
                            else:
                                responses = max(responses or policy.window, policy.window)
        return cls(presented, responses, ever)


def inventory_rules(plan: DecisionPlan) -> Mapping[tuple[str, str], tuple[InventoryRule, ...]]:
    """(placement, offer) -> the inventory policies a proposition there draws on."""
    rules: dict[tuple[str, str], tuple[InventoryRule, ...]] = {}
    for placement in plan.placements.values():
        for candidates in placement.candidates.values():  # (fallbacks among them)
            for cand in candidates:
                found = tuple(
                    InventoryRule(policy.name, policy.limit, policy.per)
                    for policy, _key in cand.policies
                    if policy.kind == "inventory"
                )
                if found:
                    rules[placement.name, cand.offer.code] = found
    return rules
