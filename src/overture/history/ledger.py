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
import sys
from bisect import bisect_left
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
_Key = tuple[str, str, str]  # (event, "offer"|"channel"|"category", its code or name)


class ProfileHistory:
    """A profile's counted history as read at `version` (0: nothing recorded yet).

    A decision asks for many counts (one per policy and candidate: about 40 for the demo's
    two placements), so the first count indexes the entries by what policies count them
    under: (event, "offer"|"channel"|"category", key) -> sorted times, and each count is a
    lookup and a bisection. Scanning the entries for each count instead cost 1.6 of 11 s
    in a profile of the runtime benchmark, and grew with the history. The index is made of
    tuples and strings only, which the garbage collector stops tracking, so a node holding
    20,000 cached histories does not pause for them (full passes over a cache of lists and
    objects paused the loop for 100+ ms). Recording an entry (the node's own propositions,
    once claimed) updates the index in place, so a profile's next decision does not index
    its history again."""

    __slots__ = ("_index", "after", "items", "read", "version")

    def __init__(
        self, version: int, items: tuple[_Item, ...] = (), after: tuple[int, int] = (0, 0)
    ) -> None:
        self.version = version
        self.items = items
        # What was read from the database (the first `read` items) and the last proposition
        # and event ids among them; the node's own claims are recorded after them. A
        # database ledger reads what was written since, instead of it all again (SqlLedger).
        self.read = len(items)
        self.after = after
        self._index: dict[_Key, tuple[dt.datetime, ...]] | None = None

    @classmethod
    def of(cls, version: int, entries: Sequence[Entry]) -> ProfileHistory:
        return cls(version, tuple(_item(e) for e in entries))

    def record(self, *entries: Entry) -> None:
        """Add entries (a claim's at once: each key they touch is updated once, whatever
        the number of entries under it; with the keys remembered (_keys), a claim's four
        entries take 4.8 µs to record where one at a time took 8.1)."""
        items = tuple((e.event, e.offer_code, e.channel, e.categories, e.at) for e in entries)
        self.items += items
        index = self._index
        if index is None:
            return
        added: dict[_Key, list[dt.datetime]] = {}
        for item in items:
            at = item[4]
            for key in _keys(item):
                found = added.get(key)
                if found is None:
                    added[key] = [at]
                else:
                    found.append(at)
        for key, times in added.items():  # kept current: the next decision counts from it
            old = index.get(key, ())
            if len(times) > 1:
                times.sort()
            if not old or old[-1] <= times[0]:  # the usual case: newer than what is there
                index[key] = (*old, *times)
            else:
                index[key] = tuple(sorted((*old, *times)))

    def count(self, event: str, scope: str, key: str, since: dt.datetime | None) -> int:
        index = self._index
        if index is None:
            index = self._index = _index(self.items)
        times = index.get((event, scope, key))
        if times is None:
            return 0
        if since is None:
            return len(times)
        return len(times) - bisect_left(times, since)


def _index(items: tuple[_Item, ...]) -> dict[_Key, tuple[dt.datetime, ...]]:
    found: dict[_Key, list[dt.datetime]] = {}
    for item in items:
        for key in _keys(item):
            found.setdefault(key, []).append(item[4])
    return {key: tuple(sorted(times)) for key, times in found.items()}


_KEYS: dict[tuple[str, str, str, tuple[str, ...]], tuple[_Key, ...]] = {}


def _keys(item: _Item) -> tuple[_Key, ...]:
    """What policies count an entry under (once per category). Remembered by what it is
    made of: entries repeat the catalog's few offers, and building the keys was 2 of the
    5 µs of recording an entry."""
    made_of = item[:4]
    keys = _KEYS.get(made_of)
    if keys is None:
        kind, offer, channel, categories = made_of
        keys = (
            (kind, "offer", offer),
            (kind, "channel", channel),
            *((kind, "category", c) for c in dict.fromkeys(categories)),
        )
        if len(_KEYS) >= 100_000:  # offers of old deployments: forget them all
            _KEYS.clear()
        _KEYS[made_of] = keys
    return keys


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


class WithheldCounts:
    """The engine's History when counts cannot be read or checked safely (Redis does not
    answer, its counters are being rebuilt, the database does not answer): every count is
    beyond any limit, so every offer a capping, suppression or inventory policy counts is
    left out, and only offers no policy counts can be proposed (a degraded decision)."""

    __slots__ = ()

    def count(
        self, profile_id: str, event: str, scope: str, key: str, since: dt.datetime | None
    ) -> int:
        return sys.maxsize

    def total(self, offer_code: str, event: str, since: dt.datetime | None) -> int:
        return sys.maxsize


WITHHELD = WithheldCounts()


@dataclass(frozen=True, slots=True)
class InventoryClaim:
    offer_code: str
    period: str
    limit: int


@dataclass(slots=True)
class Claim:
    """A decision's propositions, to record if the profile is unchanged since `expected`
    (None: nothing to compare, e.g. anonymous) and every inventory has room.

    `unchecked`: a degraded decision's (decided with WITHHELD counts, so it proposes only
    offers no policy counts and draws on no inventory): recorded without comparing the
    profile's version, its entries still counted where the counts are kept."""

    environment: str
    audience: str
    profile_id: str | None
    expected: int | None
    entries: list[Entry]
    inventory: list[InventoryClaim]
    propositions: list[dict[str, Any]]
    unchecked: bool = False


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

    async def upkeep(self, lives: Sequence[LivePlan], *, starting: bool = False) -> None:
        """Keep the counts of these environments (their current plans) in step with the
        history: called when the node starts (`starting`: wait, within reason, for counts
        to be ready before serving) and then every second or so. The Redis ledger rebuilds
        counters Redis lost, replays what it recorded while Redis was down and settles
        claims whose write failed (redis_ledger.py); the database ledger has nothing to do."""
        ...

    def counters(self) -> dict[str, str]:
        """Per environment, whether its counts can be used: "ready", "rebuilding" or
        "missing" (empty when the counts are the history itself)."""
        ...

    async def close(self) -> None:
        """Write everything accepted so far, then stop."""
        ...

    async def load(
        self, live: LivePlan, audience: str, profile_id: str, now: dt.datetime | None = None
    ) -> ProfileHistory:
        """The profile's counted history (counted.py) at `now` (naive UTC; default: now)."""
        ...

    async def version(self, environment: str, audience: str, profile_id: str) -> int:
        """The profile's version now (0: nothing recorded yet): one small read, to tell
        whether a history cached by this node is still current."""
        ...

    async def refresh(
        self,
        live: LivePlan,
        audience: str,
        profile_id: str,
        cached: ProfileHistory,
        *,
        now: dt.datetime | None = None,
    ) -> ProfileHistory:
        """The profile's counted history at `now` (default: now), given one this node read
        before (with its own claims recorded since): `cached` itself when its version is
        still current, else the history as it is now (another node or worker changed it)."""
        ...

    async def claim(self, claim: Claim) -> ClaimResult: ...

    async def record_events(self, environment: str, events: list[EventRecord]) -> list[bool]:
        """Store events; True for each stored now, False for a duplicate event id."""
        ...

    async def propositions(self, tracking_codes: list[str]) -> dict[str, dict[str, Any]]:
        """Propositions by tracking code (those that exist)."""
        ...
