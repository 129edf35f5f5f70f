"""The counted history of a profile: what presentation policies count, defined once.

For a profile at `now`, under a deployment whose policies look back as far as its
`Lookback` (windows.py), the counted history is:

- its propositions decided at or after `now - presented`, each as a `presented` entry (a
  proposition counts from the moment it is made: ledger.py says why);
- its counted `presented` events at or after `now - presented` (presentations without a
  tracking code: an email another system sent, a touchpoint that decided elsewhere);
- its counted `accepted` and `rejected` events at or after `now - responses`, or all of
  them when some suppression has no period.

An event is counted (the events table's `counted` column, set by `counts()` when it is
stored) when it names a profile and is a response, or a presentation without a tracking
code; one with a tracking code confirms a proposition that already counts. Custom events
never count.

The definition is written once below as SQLAlchemy expressions, and emitted

- as driver SQL for one profile, with the profile's version in the same statement (one
  round trip, one snapshot): the runtime's hot read (`ProfileQuery`, sql_ledger.py);
- as set-based SQL over every profile of an environment (`every_profile`): the batch's
  history and the rebuild of the Redis counters;

and the Redis ledger keeps the same entries, in a presented set and a responses set per
profile trimmed to the same windows (redis_ledger.py). tests/history holds all of them to
the same counts.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    and_,
    bindparam,
    literal_column,
    null,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import KeyedColumnElement

from overture.history.tables import E, P, V
from overture.history.windows import Lookback

COUNTED_KINDS = ("presented", "accepted", "rejected")
RESPONSES = ("accepted", "rejected")
# What every_profile() selects, in this order
COLUMNS = ("audience", "profile_id", "unique", "kind", "offer_code", "categories", "channel", "at")


def counts(kind: str, *, profile_id: str | None, tracking_code: str | None) -> bool:
    """Whether an event of `kind` is part of its profile's counted history."""
    return profile_id is not None and (
        kind in RESPONSES or (kind == "presented" and tracking_code is None)
    )


def _text(value: str) -> ColumnElement[Any]:
    """A string constant written into the SQL (not a parameter)."""
    return literal_column(f"'{value}'")


@dataclass(frozen=True)
class _Filter:
    """Who and when: SQL values (bound parameters or constants) for the definition."""

    environment: Any
    audience: Any | None  # None: every audience
    profile_id: Any | None  # None: every profile
    presented_since: Any | None  # None: presentations do not count
    responses_since: Any | None  # None: every response (or none, as the lookback says)
    events_since: Any | None  # the earliest of the two (None: no bound)


def _propositions(f: _Filter) -> tuple[list[ColumnElement[bool]], KeyedColumnElement[Any]]:
    """The conditions on P of the propositions that count, and P's time column."""
    where = [P.c.environment == f.environment, P.c.decided_at >= f.presented_since]
    where.append(
        P.c.profile_id.is_not(None) if f.profile_id is None else P.c.profile_id == f.profile_id
    )
    if f.audience is not None:
        where.append(P.c.audience == f.audience)
    return where, P.c.decided_at


def _events(lookback: Lookback, f: _Filter) -> list[ColumnElement[bool]]:
    """The conditions on E of the events that count."""
    where: list[ColumnElement[bool]] = [E.c.environment == f.environment, E.c.counted == true()]
    if f.profile_id is None:
        where += [E.c.profile_id.is_not(None), E.c.audience.is_not(None)]
    else:
        where.append(E.c.profile_id == f.profile_id)
    if f.audience is not None:
        where.append(E.c.audience == f.audience)
    kinds: list[ColumnElement[bool]] = []
    if lookback.presented is not None:
        kinds.append(and_(E.c.kind == _text("presented"), E.c.at >= f.presented_since))
    if lookback.counts_responses:
        responses: ColumnElement[bool] = E.c.kind.in_([_text(k) for k in RESPONSES])
        if not lookback.responses_ever:
            responses = and_(responses, E.c.at >= f.responses_since)
        kinds.append(responses)
    where.append(or_(*kinds))
    if f.events_since is not None:  # the index's range: (environment, profile_id, at)
        where.append(E.c.at >= f.events_since)
    return where


def _since(lookback: Lookback, now: dt.datetime) -> tuple[Any, Any, Any]:
    """(presented since, responses since, events since) at `now`."""
    presented = lookback.presented_since(now)
    responses = lookback.responses_since(now)
    if lookback.responses_ever:
        return presented, responses, None
    bounds = [b for b in (presented, responses) if b is not None]
    return presented, responses, min(bounds) if bounds else None


# -- every profile: set-based ----------------------------------------------------------------
def every_profile(
    lookback: Lookback,
    environment: str,
    now: dt.datetime,
    *,
    audience: str | None = None,
    ordered: bool = False,
) -> Select[Any] | CompoundSelect[Any] | None:
    """The counted history of every profile of `environment` (of one audience, when given)
    at `now`, as rows of COLUMNS (`unique`: the tracking code or the event id), ordered by
    audience and profile when `ordered`. None when the policies count nothing."""
    if not lookback.counts_anything:
        return None
    presented, responses, events = _since(lookback, now)
    f = _Filter(environment, audience, None, presented, responses, events)
    parts: list[Select[Any]] = []
    if lookback.presented is not None:
        where, at = _propositions(f)
        parts.append(
            select(
                P.c.audience,
                P.c.profile_id,
                P.c.tracking_code.label("unique"),
                _text("presented").label("kind"),
                P.c.offer_code,
                P.c.categories,
                P.c.channel,
                at.label("at"),
            ).where(*where)
        )
    parts.append(
        select(
            E.c.audience,
            E.c.profile_id,
            E.c.event_id.label("unique"),
            E.c.kind,
            E.c.offer_code,
            E.c.categories,
            E.c.channel,
            E.c.at,
        ).where(*_events(lookback, f))
    )
    query = parts[0] if len(parts) == 1 else union_all(*parts)
    if ordered:
        query = query.order_by(literal_column("audience"), literal_column("profile_id"))
    return query


# -- one profile: the runtime's driver SQL -----------------------------------------------------
@dataclass(frozen=True)
class ProfileQuery:
    """One profile's version and counted history in one statement, for the driver.

    Rows are (kind, offer_code, categories, channel, at, number, table): the first, of kind
    `v`, carries the version in `number` (when the profile has one); the others are
    entries, with their row's id in `number` and `p` (propositions) or `e` (events) in
    `table`. A query made `after` reads only the entries whose ids are past the given
    ones: what was written since a history was read (SQLite only: sql_ledger.py says why)."""

    sql: str  # with ? placeholders (store/raw.py gives psycopg its own)
    names: tuple[str, ...]  # the parameters, in the order of the placeholders
    lookback: Lookback

    def params(
        self,
        environment: str,
        audience: str,
        profile_id: str,
        now: dt.datetime,
        time: Callable[[dt.datetime], Any],
        *,
        after: tuple[int, int] = (0, 0),
    ) -> tuple[Any, ...]:
        """The statement's parameters (`time`: how the driver takes a time: raw.Reader.time;
        `after`: the last proposition's and event's ids already read, for a query made
        `after`)."""
        presented, responses, events = _since(self.lookback, now)
        values = {
            "environment": environment,
            "audience": audience,
            "profile_id": profile_id,
            "presented_since": presented,
            "responses_since": responses,
            "events_since": events,
            "presented_after": after[0],
            "events_after": after[1],
        }
        return tuple(time(values[n]) if n.endswith("_since") else values[n] for n in self.names)


@functools.lru_cache(maxsize=64)
def profile_query(lookback: Lookback, dialect: str, *, after: bool = False) -> ProfileQuery:
    """The driver statement of the counted history for one profile (`dialect`: sqlite or
    postgresql), made once per lookback; `after`: only the entries past given row ids."""
    presented, responses, events = _since(lookback, dt.datetime(2000, 1, 1))
    f = _Filter(
        bindparam("environment"),
        bindparam("audience"),
        bindparam("profile_id"),
        bindparam("presented_since") if presented is not None else None,
        bindparam("responses_since") if responses is not None else None,
        bindparam("events_since") if events is not None else None,
    )
    parts: list[Select[Any]] = [
        select(_text("v"), null(), null(), null(), null(), V.c.version, null()).where(
            V.c.environment == f.environment,
            V.c.audience == f.audience,
            V.c.profile_id == f.profile_id,
        )
    ]
    if lookback.presented is not None:
        where, at = _propositions(f)
        if after:
            where.append(P.c.id > bindparam("presented_after"))
        parts.append(
            select(
                _text("presented"),
                P.c.offer_code,
                P.c.categories,
                P.c.channel,
                at,
                P.c.id,
                _text("p"),
            ).where(*where)
        )
    if lookback.counts_anything:
        where = _events(lookback, f)
        if after:
            where.append(E.c.id > bindparam("events_after"))
        parts.append(
            select(
                E.c.kind, E.c.offer_code, E.c.categories, E.c.channel, E.c.at, E.c.id, _text("e")
            ).where(*where)
        )
    statement = union_all(*parts)
    chosen = (
        sqlite.dialect() if dialect == "sqlite" else postgresql.dialect(paramstyle="qmark")  # type: ignore[no-untyped-call]
    )
    compiled = statement.compile(dialect=chosen)
    return ProfileQuery(str(compiled), tuple(compiled.positiontup or ()), lookback)
