"""Offer performance reports: the figures of an environment over a period, by a dimension.

Every figure is an SQL aggregate: days come from the daily rollup (rollups.py), kept exact
as history arrives; hours (the last two days) from the history itself. docs/reports.md
defines each figure; in short, per row:

- propositions: offers proposed; presented, accepted, rejected: events of those kinds;
- rate: acceptances over presentations on channels that report presentations (a channel
  does when it has any presentation in the period), over propositions on those that do
  not (email, batch); `basis` says which (`mixed` when a row spans both kinds);
- low, high: the 95 % Wilson interval of the rate (acceptances beyond the trials, as when a
  touchpoint reports one acceptance twice, are capped at the trials);
- trend: the rate over the second half of the period minus the rate over the first half.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, String, and_, func, select
from sqlalchemy import cast as cast_

from overture.history.rollups import ALL, R
from overture.history.tables import E, P

Dimension = Literal["offer", "placement", "channel", "category", "segment", "day", "hour"]
DIMENSIONS: tuple[Dimension, ...] = (
    "offer",
    "placement",
    "channel",
    "category",
    "segment",
    "day",
    "hour",
)
_COLUMN = {
    "offer": "offer_code",
    "placement": "placement",
    "channel": "channel",
    "category": "category",
    "segment": "segment",
    "day": "day",
}
FILTERS = ("offer", "placement", "channel", "category", "segment")
Z = 1.959963984540054  # the 97.5th percentile of the normal distribution
EVIDENCE = 30  # trials a rate needs before it ranks among the best or the worst
MAX_DAYS = 3660  # ten years
HOUR_DAYS = 2  # the hour view reads the history itself: two days of it at most


class ReportError(ValueError):
    """A report asked for in a way that cannot be answered (says how to ask)."""


@dataclass(frozen=True)
class Period:
    """[start, end) in whole UTC days."""

    start: dt.date
    end: dt.date

    @classmethod
    def last(cls, days: int, today: dt.date | None = None) -> Period:
        days = min(max(days, 1), MAX_DAYS)
        end = (today or dt.datetime.now(dt.UTC).date()) + dt.timedelta(days=1)
        return cls(end - dt.timedelta(days=days), end)

    @classmethod
    def parse(cls, since: str | None, until: str | None, days: int = 30) -> Period:
        """From `since` and `until` (YYYY-MM-DD, both included), or the last `days`."""
        try:
            default = cls.last(days)
            start = dt.date.fromisoformat(since) if since else None
            last = dt.date.fromisoformat(until) if until else None
        except (ValueError, OverflowError):
            raise ReportError("write days as YYYY-MM-DD, e.g. since=2026-11-01") from None
        try:
            end = last + dt.timedelta(days=1) if last else default.end
            start = start or end - (default.end - default.start)
        except OverflowError:
            raise ReportError(
                "the period reaches beyond the calendar: ask for fewer days"
            ) from None
        if start >= end:
            raise ReportError(f"the period starts ({start}) after it ends ({end})")
        if (end - start).days > MAX_DAYS:
            raise ReportError("a report covers at most ten years")
        return cls(start, end)

    @property
    def middle(self) -> dt.date:
        return self.start + (self.end - self.start) // 2


@dataclass
class Row:
    key: str
    propositions: int = 0
    presented: int = 0
    accepted: int = 0
    rejected: int = 0
    trials: int = 0
    basis: str = ""
    rate: float | None = None
    low: float | None = None
    high: float | None = None
    trend: float | None = None
    _halves: list[list[int]] = field(default_factory=lambda: [[0, 0], [0, 0]], repr=False)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("_halves")
        return out


@dataclass
class Report:
    environment: str
    by: Dimension
    period: Period
    filters: dict[str, str]
    rows: list[Row]
    total: Row
    deployments: list[dict[str, Any]]
    reporting_channels: list[str]  # channels whose rate is over presentations

    def as_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "by": self.by,
            "since": self.period.start.isoformat(),
            "until": (self.period.end - dt.timedelta(days=1)).isoformat(),
            "filters": self.filters,
            "rows": [r.as_dict() for r in self.rows],
            "total": self.total.as_dict(),
            "deployments": self.deployments,
            "reporting_channels": self.reporting_channels,
        }


def wilson(successes: int, trials: int) -> tuple[float, float] | None:
    """The 95 % Wilson score interval of successes/trials (None without trials)."""
    if trials <= 0:
        return None
    k = min(successes, trials)
    p = k / trials
    z2 = Z * Z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = Z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def _check_filters(filters: dict[str, str]) -> dict[str, str]:
    unknown = sorted(set(filters) - set(FILTERS))
    if unknown:
        raise ReportError(f"cannot filter on {unknown[0]!r}; filters: {', '.join(FILTERS)}")
    return {k: v for k, v in filters.items() if v}


def report(
    conn: Connection,
    environment: str,
    by: Dimension,
    period: Period,
    filters: dict[str, str] | None = None,
) -> Report:
    """The figures of `environment` over `period`, one row per value of `by`."""
    if by not in DIMENSIONS:
        raise ReportError(f"unknown dimension {by!r}; report by {', '.join(DIMENSIONS)}")
    chosen = _check_filters(dict(filters or {}))
    reporting = _reporting_channels(conn, environment, period, chosen)
    if by == "hour":
        if (period.end - period.start).days > HOUR_DAYS:
            raise ReportError(
                f"the hour view covers at most {HOUR_DAYS} days (it reads the history itself): "
                "ask for days=2, or by day"
            )
        per_channel = _hours(conn, environment, period, chosen)
    else:
        per_channel = _days(conn, environment, by, period, chosen)
    rows: dict[str, Row] = {}
    total = Row("total")
    for key, channel, half, counts in per_channel:
        row = rows.setdefault(key, Row(key))
        for target in (row, total):
            _add(target, channel, half, counts, reporting)
    for row in (*rows.values(), total):
        _finish(row)
    if by == "segment" and "segment" not in chosen:
        # a proposition counts in each of its segments: the total is every profile's, once
        total = report(conn, environment, "channel", period, chosen).total
    ordered = sorted(rows.values(), key=lambda r: r.key)
    if by not in ("day", "hour"):
        ordered.sort(key=lambda r: -r.propositions)
    return Report(
        environment,
        by,
        period,
        chosen,
        ordered,
        total,
        _deployments(conn, environment, period),
        sorted(reporting),
    )


def _add(row: Row, channel: str, half: int, counts: tuple[int, ...], reporting: set[str]) -> None:
    propositions, presented, accepted, rejected = counts
    row.propositions += propositions
    row.presented += presented
    row.accepted += accepted
    row.rejected += rejected
    trials = presented if channel in reporting else propositions
    row.trials += trials
    basis = "presentations" if channel in reporting else "propositions"
    row.basis = basis if row.basis in ("", basis) else "mixed"
    row._halves[half][0] += accepted
    row._halves[half][1] += trials


def _finish(row: Row) -> None:
    if row.trials:
        row.rate = min(row.accepted, row.trials) / row.trials
        interval = wilson(row.accepted, row.trials)
        assert interval is not None
        row.low, row.high = interval
    (a1, t1), (a2, t2) = row._halves
    if t1 and t2:  # (a one-day period has no first half: no trend)
        row.trend = min(a2, t2) / t2 - min(a1, t1) / t1


def _where(table: Any, environment: str, chosen: dict[str, str], rollup: bool) -> list[Any]:
    """The filters, on the rollup (`rollup`) or on the history (whose category is the first
    of its categories, and which has no segment to filter on)."""
    clauses = [table.c.environment == environment]
    for name, value in chosen.items():
        if name == "segment":
            continue  # the rollup's segment column: _days
        if name == "category" and not rollup:
            clauses.append(
                (table.c.categories == value)
                | table.c.categories.startswith(value + " ", autoescape=True)
            )
            continue
        column = "offer_code" if name == "offer" else name
        clauses.append(table.c[column] == value)
    return clauses


def _days(
    conn: Connection, environment: str, by: Dimension, period: Period, chosen: dict[str, str]
) -> list[tuple[str, str, int, tuple[int, ...]]]:
    """Per (value of `by`, channel, half of the period): the summed rollup."""
    start, end, middle = (d.isoformat() for d in (period.start, period.end, period.middle))
    dimension = R.c[_COLUMN[by]]
    half = (R.c.day >= middle).label("half")
    clauses = _where(R, environment, chosen, rollup=True)
    if "segment" in chosen:
        clauses.append(R.c.segment == chosen["segment"])
    elif by == "segment":
        clauses.append(R.c.segment != ALL)  # a row per segment
    else:
        clauses.append(R.c.segment == ALL)  # every profile, once
    query = (
        select(
            dimension.label("key"),
            R.c.channel,
            half,
            func.sum(R.c.propositions),
            func.sum(R.c.presented),
            func.sum(R.c.accepted),
            func.sum(R.c.rejected),
        )
        .where(and_(*clauses), R.c.day >= start, R.c.day < end)
        .group_by(dimension, R.c.channel, half)
    )
    return [
        (str(key), channel, int(bool(h)), tuple(int(v or 0) for v in counts))
        for key, channel, h, *counts in conn.execute(query)
    ]


def _hours(
    conn: Connection, environment: str, period: Period, chosen: dict[str, str]
) -> list[tuple[str, str, int, tuple[int, ...]]]:
    """Per (hour, channel): counted from the history itself (the rollup is daily)."""
    if "segment" in chosen:
        raise ReportError("hours are counted from the history: filter by segment per day")
    start = dt.datetime.combine(period.start, dt.time())
    end = dt.datetime.combine(period.end, dt.time())
    middle = dt.datetime.combine(period.middle, dt.time())
    out: dict[tuple[str, str], list[int]] = {}
    sources = [(0, P, P.c.decided_at, None)] + [
        (1 + i, E, E.c.at, kind) for i, kind in enumerate(("presented", "accepted", "rejected"))
    ]
    for measure, table, at, kind in sources:
        hour = func.substr(cast_(at, String()), 1, 13)
        query = select(hour, table.c.channel, func.count()).where(
            and_(*_where(table, environment, chosen, rollup=False)), at >= start, at < end
        )
        if kind is not None:
            query = query.where(table.c.kind == kind, table.c.offer_code.is_not(None))
        for key, channel, n in conn.execute(query.group_by(hour, table.c.channel)):
            counts = out.setdefault((str(key).replace(" ", "T") + ":00", channel or ""), [0] * 4)
            counts[measure] += int(n)
    middle_key = middle.strftime("%Y-%m-%dT%H:00")
    return [
        (key, channel, int(key >= middle_key), tuple(counts))
        for (key, channel), counts in out.items()
    ]


def _reporting_channels(
    conn: Connection, environment: str, period: Period, chosen: dict[str, str]
) -> set[str]:
    """The channels with any presentation in the period (whatever the filters but the
    environment): their rates are over presentations."""
    query = (
        select(R.c.channel)
        .where(
            R.c.environment == environment,
            R.c.segment == ALL,
            R.c.day >= period.start.isoformat(),
            R.c.day < period.end.isoformat(),
        )
        .group_by(R.c.channel)
        .having(func.sum(R.c.presented) > 0)
    )
    return {str(c) for (c,) in conn.execute(query)}


def _deployments(conn: Connection, environment: str, period: Period) -> list[dict[str, Any]]:
    from overture.store.models import Deployment, Environment

    query = (
        select(
            Deployment.number, Deployment.deployed_at, Deployment.deployed_by, Deployment.comment
        )
        .join(Environment, Deployment.environment_id == Environment.id)
        .where(
            Environment.name == environment,
            Deployment.deployed_at >= dt.datetime.combine(period.start, dt.time()),
            Deployment.deployed_at < dt.datetime.combine(period.end, dt.time()),
        )
        .order_by(Deployment.number)
    )
    return [
        {"number": n, "at": at.isoformat() + "Z", "by": by, "comment": comment}
        for n, at, by, comment in conn.execute(query)
    ]


def ranked(rows: list[Row], evidence: int = EVIDENCE) -> tuple[list[Row], list[Row]]:
    """(best, worst) of rows with at least `evidence` trials: the best by the low end of
    their interval, the worst by the high end (a rate on little evidence ranks nowhere)."""
    sure = [r for r in rows if r.trials >= evidence and r.low is not None]
    best = sorted(sure, key=lambda r: (-(r.low or 0), r.key))[:5]
    rest = [r for r in sure if r not in best]  # an offer is never both
    worst = sorted(rest, key=lambda r: ((r.high or 0), r.key))[:5]
    return best, worst


def never_proposed(
    conn: Connection,
    environment: str,
    period: Period,
    offers: list[str],
    filters: dict[str, str] | None = None,
) -> list[str]:
    """Of `offers` (those deployed), the ones with no proposition in the period (where
    the filters say)."""
    chosen = _check_filters(dict(filters or {}))
    query = (
        select(R.c.offer_code)
        .where(
            *_where(R, environment, chosen, rollup=True),
            R.c.segment == chosen.get("segment", ALL),
            R.c.day >= period.start.isoformat(),
            R.c.day < period.end.isoformat(),
        )
        .group_by(R.c.offer_code)
        .having(func.sum(R.c.propositions) > 0)
    )
    proposed = {str(c) for (c,) in conn.execute(query)}
    return [o for o in offers if o not in proposed]


CSV_COLUMNS = (
    "key",
    "propositions",
    "presented",
    "accepted",
    "rejected",
    "trials",
    "basis",
    "rate",
    "low",
    "high",
    "trend",
)


def as_csv(rep: Report) -> str:
    import io

    out = io.StringIO()
    write_csv(out, rep.by, [r.as_dict() for r in [*rep.rows, rep.total]])
    return out.getvalue()


def write_csv(out: Any, by: str, rows: list[dict[str, Any]]) -> None:
    """Rows (as `Row.as_dict()` or the API's JSON gives them) as CSV: a row per value of
    `by`, then the total (what the API's CSV and `overture report --csv` both write)."""
    import csv

    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([by, *CSV_COLUMNS[1:]])
    for row in rows:
        values = {**row, "key": _cell(str(row["key"]))}
        writer.writerow(["" if values[c] is None else values[c] for c in CSV_COLUMNS])


def _cell(text: str) -> str:
    """A name as a spreadsheet reads it safely: never a formula (a touchpoint names offers)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
