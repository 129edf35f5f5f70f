"""What presentation policies count, and how a decision claims its share exactly.

A decision reads one profile's counted history (propositions, which count as
presentations from the moment they are made, and the accepted, rejected or untracked
presented events), decides with it, and then *claims*: its propositions are recorded
only if the profile's history has not changed since it was read (compare-and-set on the
profile's version) and every inventory it draws on is still under its limit (increment
only while below). A claim that loses a race is refused, the node reads again and decides
again. So two nodes deciding for one profile at once can never both spend the last unit
of a cap, and an offer limited to M presentations is proposed at most M times.

Propositions count when they are made, not when a touchpoint reports them presented:
that is what makes the cap exact (Adobe's typology rules count propositions the same way;
Interact counts logged contacts and its caps silently stop working when a touchpoint
forgets to log). A `presented` event that names a tracking code confirms its proposition
and does not count again; one that names an offer and a profile without a tracking code
(an outbound send, a touchpoint that decided elsewhere) counts as a presentation.

Two ledgers implement this: `SqlLedger` (counts read from the history tables, claims
checked in the transaction that records the propositions) and `RedisLedger` (counts and
claims in Redis, history written to the database as well). tests/history/ holds both,
on SQLite and PostgreSQL, to the same behaviour.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from overture.history.deployed import LivePlan
from overture.history.windows import inventory_period

ProfileKey = tuple[str, str, str]  # environment, audience, profile id


@dataclass(frozen=True, slots=True)
class Entry:
    """One counted item of a profile's history."""

    event: str  # presented, accepted or rejected
    offer_code: str
    categories: tuple[str, ...]
    channel: str
    at: dt.datetime


# (event, offer, channel, categories, at): tuples of atoms, which the garbage collector
# stops tracking, so that a node holding 20,000 cached histories does not pause for them
_Item = tuple[str, str, str, tuple[str, ...], dt.datetime]


class ProfileHistory:
    """A profile's counted history as read at `version` (0: nothing recorded yet).

    A profile has a handful of counted entries, so counting scans them: cheaper than
    keeping indexes, and it keeps the node's cache of histories small for the garbage
    collector (whose full passes over an indexed cache paused the loop for 100+ ms)."""

    __slots__ = ("items", "version")

    def __init__(self, version: int, items: tuple[_Item, ...] = ()) -> None:
        self.version = version
        self.items = items

    @classmethod
    def of(cls, version: int, entries: Sequence[Entry]) -> ProfileHistory:
        return cls(version, tuple(_item(e) for e in entries))

    def record(self, entry: Entry) -> None:
        self.items = (*self.items, _item(entry))

    def count(self, event: str, scope: str, key: str, since: dt.datetime | None) -> int:
        n = 0
        for kind, offer, channel, categories, at in self.items:
            if kind != event or (since is not None and at < since):
                continue
            if scope == "offer":
                n += offer == key
            elif scope == "channel":
                n += channel == key
            else:
                n += key in categories
        return n


def _item(e: Entry) -> _Item:
    return (e.event, e.offer_code, e.channel, e.categories, e.at)


class InventoryView:
    """What this node last knew of inventory counters: used by decisions to skip an offer
    it knows is exhausted; the claim checks the real counter."""

    def __init__(self) -> None:
        self.used: dict[tuple[str, str, str], int] = {}  # (environment, offer, period)

    def get(self, environment: str, offer_code: str, period: str) -> int:
        return self.used.get((environment, offer_code, period), 0)

    def saw(self, environment: str, offer_code: str, period: str, used: int) -> None:
        key = (environment, offer_code, period)
        if used > self.used.get(key, 0):
            self.used[key] = used
        if len(self.used) > 100_000:  # old periods: forget them all, they are re-learnt
            self.used.clear()


class RequestHistory:
    """The engine's History for one decision: one profile's counts and the inventory."""

    __slots__ = ("environment", "inventory", "profile")

    def __init__(
        self, environment: str, profile: ProfileHistory | None, inventory: InventoryView
    ) -> None:
        self.environment = environment
        self.profile = profile
        self.inventory = inventory

    def count(
        self, profile_id: str, event: str, scope: str, key: str, since: dt.datetime | None
    ) -> int:
        if self.profile is None:
            return 0
        return self.profile.count(event, scope, key, since)

    def total(self, offer_code: str, event: str, since: dt.datetime | None) -> int:
        if event != "presented":
            return 0
        return self.inventory.get(self.environment, offer_code, inventory_period(since))


@dataclass(frozen=True, slots=True)
class InventoryClaim:
    offer_code: str
    period: str
    limit: int


@dataclass(slots=True)
class Claim:
    """A decision's propositions, to record if the profile is unchanged since `expected`
    (None: nothing to compare, e.g. anonymous) and every inventory has room."""

    environment: str
    audience: str
    profile_id: str | None
    expected: int | None
    entries: list[Entry]
    inventory: list[InventoryClaim]
    propositions: list[dict[str, Any]]


@dataclass(slots=True)
class ClaimResult:
    ok: bool
    version: int | None = None  # the profile's version after the claim
    conflict: bool = False  # the profile's history changed: read again
    exhausted: list[tuple[str, str, int]] = field(default_factory=list)  # offer, period, used


@dataclass(slots=True)
class EventRecord:
    """An event resolved and ready to store (`row` has the events table's columns)."""

    row: dict[str, Any]
    entry: Entry | None  # when it counts for presentation policies


class Ledger(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None:
        """Write everything accepted so far, then stop."""
        ...

    async def load(
        self, live: LivePlan, audience: str, profile_id: str, now: dt.datetime | None = None
    ) -> ProfileHistory:
        """The profile's counted history (counted.py) at `now` (naive UTC; default: now)."""
        ...

    async def claim(self, claim: Claim) -> ClaimResult: ...

    async def record_events(self, environment: str, events: list[EventRecord]) -> list[bool]:
        """Store events; True for each stored now, False for a duplicate event id."""
        ...

    async def propositions(self, tracking_codes: list[str]) -> dict[str, dict[str, Any]]:
        """Propositions by tracking code (those that exist)."""
        ...
