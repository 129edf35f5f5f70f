"""The history's tables as its readers and writers use them: handles, columns, statements.

The tables are declared with the rest of the schema in store/history.py (one metadata,
one chain of migrations, held to each other by tests/store); this module is how the rest
of Overture reaches them, so that every part writes a proposition with the same columns
and bumps a profile's version with the same statement.

    P    propositions      every offer proposed, with its tracking code (append-only)
    E    events            every event posted, idempotent per (environment, event_id)
    V    profile_versions  a number per profile, raised at each change to its counted
                           history (compare-and-set for exact claims)
    INV  inventory_counters  an offer's presentations per UTC day and in total

Statements written for the driver (`?` placeholders, store/raw.py) are here too: the
runtime runs them on its hot path, the batch through SQLAlchemy's exec_driver_sql.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import cast

from sqlalchemy import Table

from overture.store.history import (
    EventRow,
    InventoryCounterRow,
    ProfileVersionRow,
    PropositionRow,
)
from overture.store.raw import unnest_insert

P = cast(Table, PropositionRow.__table__)
E = cast(Table, EventRow.__table__)
V = cast(Table, ProfileVersionRow.__table__)
INV = cast(Table, InventoryCounterRow.__table__)

PROPOSITION_COLUMNS = (
    "tracking_code",
    "environment",
    "deployment",
    "audience",
    "profile_id",
    "session_id",
    "placement",
    "channel",
    "offer_code",
    "categories",
    "segments",
    "rank",
    "score",
    "probability",
    "fallback",
    "decided_at",
)
EVENT_COLUMNS = (
    "environment",
    "event_id",
    "name",
    "kind",
    "counted",
    "tracking_code",
    "audience",
    "profile_id",
    "session_id",
    "offer_code",
    "categories",
    "segments",
    "channel",
    "placement",
    "at",
    "received_at",
    "attributes",
)


def _marks(columns: tuple[str, ...]) -> str:
    return ", ".join("?" * len(columns))


INSERT_PROPOSITION = (
    f"INSERT INTO propositions ({', '.join(PROPOSITION_COLUMNS)}) "
    f"VALUES ({_marks(PROPOSITION_COLUMNS)})"
)
INSERT_PROPOSITIONS_PG = unnest_insert(P, PROPOSITION_COLUMNS)  # all in one statement
# PostgreSQL: a batch of events in one statement, returning those stored (not replays)
INSERT_EVENTS_PG = unnest_insert(
    E,
    EVENT_COLUMNS,
    "ON CONFLICT (environment, event_id) DO NOTHING RETURNING environment, event_id",
)


@functools.lru_cache(maxsize=64)
def insert_events_returning(rows: int) -> str:
    """SQLite: `rows` events in one INSERT (an event already stored is skipped), returning
    the (environment, event_id) of each one stored: one statement for a batch instead of
    one per event, and of a batch's events only those stored come back."""
    values = ", ".join([f"({_marks(EVENT_COLUMNS)})"] * rows)
    return (
        f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES {values} "
        "ON CONFLICT (environment, event_id) DO NOTHING RETURNING environment, event_id"
    )


# A profile's counted history changed (an event, a batch's propositions): raise its version,
# so that a node holding an older read of it reads again before its next claim.
BUMP_VERSION = (
    "INSERT INTO profile_versions (environment, audience, profile_id, version) "
    "VALUES (?, ?, ?, 1) ON CONFLICT (environment, audience, profile_id) "
    "DO UPDATE SET version = profile_versions.version + 1"
)
# (environment, audience, profile id): the first claim of a profile with no version yet
FIRST_VERSION = (
    "INSERT INTO profile_versions (environment, audience, profile_id, version) "
    "VALUES (?, ?, ?, 1) ON CONFLICT DO NOTHING RETURNING version"
)
# (environment, audience, profile id): the profile's version now (no row: 0)
READ_VERSION = (
    "SELECT version FROM profile_versions WHERE environment = ? AND audience = ? AND profile_id = ?"
)
# (environment, audience, profile id, the version read): compare-and-set
NEXT_VERSION = (
    "UPDATE profile_versions SET version = version + 1 "
    "WHERE environment = ? AND audience = ? AND profile_id = ? AND version = ?"
)
# (environment, offer, period, limit): take one while under the limit
TAKE_INVENTORY = (
    "UPDATE inventory_counters SET used = used + 1 "
    "WHERE environment = ? AND offer_code = ? AND period = ? AND used < ?"
)
# (environment, offer, period): the counter's first use
FIRST_INVENTORY = (
    "INSERT INTO inventory_counters (environment, offer_code, period, used) "
    "VALUES (?, ?, ?, 1) ON CONFLICT DO NOTHING RETURNING used"
)
# (environment, offer, period): make sure the counter exists
ENSURE_INVENTORY = (
    "INSERT INTO inventory_counters (environment, offer_code, period, used) "
    "VALUES (?, ?, ?, 0) ON CONFLICT DO NOTHING"
)
# (n, environment, offer, period): add n (negative: give back)
ADD_INVENTORY = (
    "UPDATE inventory_counters SET used = used + ? "
    "WHERE environment = ? AND offer_code = ? AND period = ?"
)
# (environment, offer, period)
INVENTORY_USED = (
    "SELECT used FROM inventory_counters WHERE environment = ? AND offer_code = ? AND period = ?"
)


def join_categories(categories: Iterable[str]) -> str:
    """An offer's category chain as stored: nearest first, space-separated."""
    return " ".join(categories)


def split_categories(stored: str | None) -> tuple[str, ...]:
    """The category chain of a stored proposition or event."""
    return tuple(stored.split()) if stored else ()
