"""Contact and response history, as the decision engine reads it.

Presentation policies count what a profile was shown and how it responded: capping counts
presentations of an offer, a category or a channel within a window; suppression counts
acceptances and rejections; inventory counts an offer's presentations over everyone. The
engine only reads through the small `History` interface below; the database and Redis
implementations come with the runtime, this module has the in-memory one used by tests,
the CLI and simulations.

Events name the offer, all its categories (so a category counts its whole subtree) and
the channel. A proposition is not a presentation: the touchpoint reports `presented`.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal, Protocol

EventKind = Literal["presented", "accepted", "rejected"]
Scope = Literal["offer", "category", "channel"]
EVENT_KINDS: tuple[EventKind, ...] = ("presented", "accepted", "rejected")


def inventory_since(per: str, now: dt.datetime) -> dt.datetime | None:
    """Where an inventory policy's count starts: midnight of `now`'s day (UTC) for a daily
    limit (`per: day`), None (ever) for a lifetime one (`per: total`)."""
    return dt.datetime(now.year, now.month, now.day) if per == "day" else None


class History(Protocol):
    def count(
        self, profile_id: str, event: str, scope: str, key: str, since: dt.datetime | None
    ) -> int:
        """Events of kind `event` for one profile on the offer / category / channel `key`
        at or after `since` (None: ever)."""
        ...

    def total(self, offer_code: str, event: str, since: dt.datetime | None) -> int:
        """Events of kind `event` on an offer, over every profile, at or after `since`."""
        ...


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    profile_id: str
    event: str
    offer_code: str
    categories: tuple[str, ...]
    channel: str
    at: dt.datetime


class NoHistory:
    """A history with nothing in it (anonymous decisions, simulations without history)."""

    def count(
        self, profile_id: str, event: str, scope: str, key: str, since: dt.datetime | None
    ) -> int:
        return 0

    def total(self, offer_code: str, event: str, since: dt.datetime | None) -> int:
        return 0


NO_HISTORY = NoHistory()


class InMemoryHistory:
    """History held in dictionaries of sorted timestamps: O(log n) counts per key."""

    def __init__(self) -> None:
        self._by_profile: defaultdict[tuple[str, str, str, str], list[dt.datetime]] = defaultdict(
            list
        )
        self._by_offer: defaultdict[tuple[str, str], list[dt.datetime]] = defaultdict(list)
        self.events: list[HistoryEvent] = []

    def record(self, event: HistoryEvent) -> None:
        self.events.append(event)
        keys = [("offer", event.offer_code), ("channel", event.channel)]
        keys.extend(("category", c) for c in event.categories)
        for scope, key in keys:
            bisect.insort(self._by_profile[event.profile_id, event.event, scope, key], event.at)
        bisect.insort(self._by_offer[event.offer_code, event.event], event.at)

    def count(
        self, profile_id: str, event: str, scope: str, key: str, since: dt.datetime | None
    ) -> int:
        times = self._by_profile.get((profile_id, event, scope, key))
        if not times:
            return 0
        return len(times) - (bisect.bisect_left(times, since) if since else 0)

    def total(self, offer_code: str, event: str, since: dt.datetime | None) -> int:
        times = self._by_offer.get((offer_code, event))
        if not times:
            return 0
        return len(times) - (bisect.bisect_left(times, since) if since else 0)
