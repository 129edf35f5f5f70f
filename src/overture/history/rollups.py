"""The daily rollup of offer performance (`report_daily`), kept exact as history arrives.

What it counts, per environment, UTC day, offer, placement, channel, category (the offer's
own) and segment (`*`: every profile; then one row per segment the profile was in when
it was decided):

- propositions: on the day they were decided;
- presented, accepted, rejected: events of that kind (as the channel names them), on the
  day they happened, with what their proposition says (offer, placement, channel,
  category, segments) or, without a tracking code, what the event says. Custom events
  and events about no offer are not counted.

Every writer of the history adds its deltas here in the same transaction as the rows it
writes (the runtime's recorder for propositions and new events, a batch for its
propositions): an event replayed with the same id is not new, so it adds nothing; a late
event adds to the day it happened. `rebuild` recomputes the rollup from the history with
one set-based statement, and `from_history` is that statement, which the tests hold the
maintained rollup to.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, cast

from sqlalchemy import Connection, Select, String, Table, delete, func, insert, select, text
from sqlalchemy import cast as cast_

from overture.history.tables import E, P
from overture.store.history import ReportDailyRow
from overture.store.raw import unnest_insert

R = cast(Table, ReportDailyRow.__table__)
ALL = "*"
KEY = ("environment", "day", "offer_code", "placement", "channel", "category", "segment")
MEASURES = ("propositions", "presented", "accepted", "rejected")
COUNTED = ("presented", "accepted", "rejected")

UPSERT = (
    f"INSERT INTO report_daily ({', '.join(KEY + MEASURES)}) "
    f"VALUES ({', '.join('?' * (len(KEY) + len(MEASURES)))}) "
    f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET "
    + ", ".join(f"{m} = report_daily.{m} + excluded.{m}" for m in MEASURES)
)

# the same, for PostgreSQL: every row in one statement (store/raw.py, Tx.insert_many)
UPSERT_ARRAYS = unnest_insert(
    R,
    KEY + MEASURES,
    f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET "
    + ", ".join(f"{m} = report_daily.{m} + excluded.{m}" for m in MEASURES),
)

Key = tuple[str, str, str, str, str, str, str]
Deltas = dict[Key, list[int]]


def _day(at: dt.datetime) -> str:
    return at.date().isoformat()  # (strftime writes year 999 as "999", SQL as "0999")


def _add(deltas: Deltas, key: tuple[str, ...], segments: str, measure: int) -> None:
    for segment in (ALL, *segments.split()):
        counts = deltas.setdefault(cast(Key, (*key, segment)), [0, 0, 0, 0])
        counts[measure] += 1


def propositions(rows: Iterable[Mapping[str, Any]], deltas: Deltas | None = None) -> Deltas:
    """What recording these propositions adds to the rollup."""
    out: Deltas = {} if deltas is None else deltas
    for r in rows:
        categories = str(r["categories"] or "").split()
        key = (
            r["environment"],
            _day(r["decided_at"]),
            r["offer_code"],
            r["placement"],
            r["channel"],
            categories[0] if categories else "",
        )
        _add(out, key, str(r.get("segments") or ""), 0)
    return out


def events(rows: Iterable[Mapping[str, Any]], deltas: Deltas | None = None) -> Deltas:
    """What recording these new events adds to the rollup."""
    out: Deltas = {} if deltas is None else deltas
    for r in rows:
        if r["kind"] not in COUNTED or not r["offer_code"]:
            continue
        categories = str(r["categories"] or "").split()
        key = (
            r["environment"],
            _day(r["at"]),
            r["offer_code"],
            r["placement"] or "",
            r["channel"] or "",
            categories[0] if categories else "",
        )
        _add(out, key, str(r.get("segments") or ""), 1 + COUNTED.index(r["kind"]))
    return out


def pending(tx: Any) -> Deltas:
    """The deltas a recorder transaction collects (flushed by `flush` before it commits)."""
    found: Deltas = tx.pending.setdefault("rollup", {})
    return found


async def flush(tx: Any) -> None:
    """Write what the transaction's writers added, in one sorted statement at its end: the
    rollup's rows are locked last and briefly, in the same order by every writer (no
    deadlock between two nodes), and only if the history rows are written too."""
    deltas: Deltas | None = tx.pending.pop("rollup", None)
    if deltas:
        await tx.insert_many(UPSERT, UPSERT_ARRAYS, upsert_rows(deltas))


def upsert_rows(deltas: Deltas) -> list[tuple[Any, ...]]:
    """The UPSERT statement's parameters, in a fixed order (writers that take the same
    rows in the same order cannot deadlock on them)."""
    return [(*key, *counts) for key, counts in sorted(deltas.items())]


# -- from the history, set-based -----------------------------------------------------------
def from_history(conn: Connection, environment: str | None = None) -> list[tuple[Any, ...]]:
    """The rollup computed from the history (what `rebuild` writes, what the tests hold
    the maintained rollup to): rows of KEY + MEASURES, sorted. The database counts, grouped
    by everything the rollup keys on; what is left here is one row per distinct group,
    spread over its segments."""
    deltas: Deltas = {}
    for measure, query in _grouped(environment):
        for r in conn.execute(query):
            categories = str(r.categories or "").split()
            key = (
                r.environment,
                str(r.day)[:10],
                r.offer_code,
                r.placement or "",
                r.channel or "",
                categories[0] if categories else "",
            )
            for segment in (ALL, *str(r.segments or "").split()):
                counts = deltas.setdefault(cast(Key, (*key, segment)), [0, 0, 0, 0])
                counts[measure] += int(r.n)
    return upsert_rows(deltas)


def _grouped(environment: str | None) -> list[tuple[int, Select[Any]]]:
    """Per measure, the history counted by (environment, day, offer, placement, channel,
    categories, segments)."""
    out: list[tuple[int, Select[Any]]] = []
    sources: list[tuple[int, Table, Any, Any]] = [(0, P, P.c.decided_at, None)]
    sources += [(1 + i, E, E.c.at, kind) for i, kind in enumerate(COUNTED)]
    for measure, table, at, kind in sources:
        day = func.substr(cast_(at, String()), 1, 10)
        columns = [
            table.c.environment,
            table.c.offer_code,
            table.c.placement,
            table.c.channel,
            table.c.categories,
            table.c.segments,
        ]
        query = select(day.label("day"), *columns, func.count().label("n")).group_by(day, *columns)
        if kind is not None:
            query = query.where(table.c.kind == kind, table.c.offer_code.is_not(None))
            query = query.where(table.c.offer_code != "")
        if environment is not None:
            query = query.where(table.c.environment == environment)
        out.append((measure, query))
    return out


def rebuild(conn: Connection, environment: str | None = None) -> int:
    """Recompute the rollup from the history (all environments, or one); returns its rows.

    Safe while runtimes record: writers are held off the rollup first (PostgreSQL: a
    table lock that writers wait for at the end of their transaction; SQLite: the write
    lock, taken by the first statement), so that every proposition and event is either
    in the history read here or adds itself to the rollup after this commits. Recording
    waits for the few seconds this takes (25 s for 10 million rows: benchmarks/reports.py)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("LOCK TABLE report_daily IN SHARE ROW EXCLUSIVE MODE"))
    stmt = delete(R)
    if environment is not None:
        stmt = stmt.where(R.c.environment == environment)
    conn.execute(stmt)
    rows = from_history(conn, environment)
    if rows:
        conn.execute(insert(R), [dict(zip(KEY + MEASURES, row, strict=True)) for row in rows])
    return len(rows)


def maintained(conn: Connection, environment: str | None = None) -> list[tuple[Any, ...]]:
    """The rollup as kept, rows of KEY + MEASURES sorted (zero rows left out)."""
    query = select(*(R.c[c] for c in KEY + MEASURES))
    if environment is not None:
        query = query.where(R.c.environment == environment)
    return sorted(tuple(r) for r in conn.execute(query) if any(r[len(KEY) + i] for i in range(4)))
