"""One conformance suite for every ledger (one fixture, every implementation, in the style
of Litestar's store tests): the database ledger and the Redis counters (the record in the
database), each on SQLite and on PostgreSQL.

Each test writes through the Ledger protocol (claims and events, as the runtime does) and
reads back what presentation policies count (`load`), so the implementations are held to
the same behaviour: windows at their exact boundaries, inventory periods, idempotent
events, a write the database refuses, counts after a restart; and the set-based SQL that
batches and the Redis rebuild read (counted.every_profile) gives what each profile's own
read gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from overture.catalog.model import Catalog
from overture.design.transfer import parse
from overture.history.counted import counts, every_profile
from overture.history.deployed import LivePlan, live_plan
from overture.history.failures import DatabaseDown
from overture.history.ledger import (
    Claim,
    ClaimResult,
    Entry,
    EventRecord,
    InventoryClaim,
    Ledger,
    ProfileHistory,
)
from overture.history.rebuild import rebuild_counters
from overture.history.recorder import Recorder
from overture.history.redis_ledger import RedisLedger, profile_keys
from overture.history.sql_ledger import SqlLedger
from overture.history.tables import join_categories, split_categories
from overture.store import Database
from tests.integration import redis_url

ENV = "ledgers"
CATALOG = """
name: ledgers
audiences:
  - name: visitor
    id_field: visitor_id
    fields: {visitor_id: string}
channels:
  - name: web
    events: {presented: [view], accepted: [click], rejected: [close]}
  - name: email
placements:
  - {name: banner, channel: web, max_offers: 1}
  - {name: newsletter, channel: email, max_offers: 2}
categories:
  - name: deals
  - {name: loans, parent: deals}
  - name: info
offers:
  - {code: A, name: A, category: loans, placements: [banner, newsletter], content: {t: a}}
  - {code: B, name: B, category: deals, placements: [banner], content: {t: b}}
  - {code: C, name: C, category: info, placements: [newsletter], content: {t: c}}
policies:
  - {name: weekly, kind: capping, per: offer, limit: 2, window: 7d}
  - {name: closed, kind: suppression, after: rejected, period: 30d}
  - {name: a_daily, kind: inventory, offers: [A], limit: 2, per: day}
  - {name: b_ever, kind: inventory, offers: [B], limit: 3, per: total}
"""
# The same catalog where a suppression has no period: every response counts, for ever.
WEEKLY = "  - {name: weekly, kind: capping, per: offer, limit: 2, window: 7d}\n"
CLOSED = "  - {name: closed, kind: suppression, after: rejected, period: 30d}\n"
FOR_EVER = CATALOG.replace(CLOSED, "  - {name: closed, kind: suppression, after: rejected}\n")
WEEK = dt.timedelta(days=7)
MONTH = dt.timedelta(days=30)
TICK = dt.timedelta(microseconds=1)


def _plan(text: str, environment: str = ENV) -> LivePlan:
    catalog: Catalog = parse({"catalog.yaml": text})
    return live_plan(environment, catalog)


LIVE = _plan(CATALOG)


def _now() -> dt.datetime:
    """A time ahead of the clock (naive UTC, about noon): nothing the Redis ledger trims by
    the real time (at most a window before it) is within a window of it."""
    today = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    noon = dt.datetime(today.year, today.month, today.day, 12, 0, 0, 123457)
    return noon + dt.timedelta(days=2)


@dataclass
class Backend:
    """A ledger implementation: its database (and Redis), and how to open the ledger."""

    name: str
    db: Database
    redis_url: str | None = None
    prefix: str = ""
    recorder: Recorder | None = None  # the open ledger's

    @contextlib.asynccontextmanager
    async def ledger(self) -> AsyncIterator[Ledger]:
        """A ledger as a runtime node opens it (its own recorder and readers), started;
        closed, with everything accepted written, on the way out."""
        recorder = self.recorder = Recorder(self.db)
        readers = ThreadPoolExecutor(2)
        ledger: Ledger
        if self.redis_url is None:
            ledger = SqlLedger(self.db, recorder, readers)
        else:
            ledger = RedisLedger(self.db, recorder, readers, self.redis_url, self.prefix)
        await ledger.start()
        # as a node does when it starts: counters Redis does not hold are built (here, from
        # the suite's empty history) before anything is claimed
        await ledger.upkeep([LIVE, _plan(FOR_EVER, "for-ever")], starting=True)
        try:
            yield ledger
        finally:
            await recorder.aclose()
            await ledger.close()
            readers.shutdown(wait=True)

    def run(self, test: Callable[[Ledger], Awaitable[None]]) -> None:
        async def main() -> None:
            async with self.ledger() as ledger:
                await test(ledger)

        asyncio.run(main())


@pytest.fixture(params=["sql", pytest.param("redis", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest, database: Database) -> Iterator[Backend]:
    """Each ledger over each database: the database ledger (`sql`) and the Redis counters
    (`redis`, the record in the database), on SQLite and on PostgreSQL."""
    kind = "sqlite" if database.is_sqlite else "postgresql"
    if request.param == "sql":
        yield Backend(kind, database)
        return
    url = redis_url()
    prefix = f"test-{secrets.token_hex(4)}"
    try:
        yield Backend(f"{kind}+redis", database, url, prefix)
    finally:
        _flush(url, prefix)


def _flush(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


# -- writing, as the runtime writes ---------------------------------------------------------
def _claim(
    profile: str | None,
    offers: list[tuple[str, str]],  # (offer, placement)
    at: dt.datetime,
    expected: int | None,
    *,
    live: LivePlan = LIVE,
    codes: list[str] | None = None,
) -> Claim:
    """A decision's claim, as runtime/service.py makes it: a row and an entry per
    proposition, and the inventories they draw on."""
    rows: list[dict[str, Any]] = []
    entries: list[Entry] = []
    inventory: dict[tuple[str, str], int] = {}
    for rank, (offer, placement) in enumerate(offers, 1):
        channel = live.plan.placements[placement].channel
        categories = live.offer_categories[offer]
        code = codes[rank - 1] if codes else secrets.token_hex(8)
        rows.append(
            {
                "tracking_code": code,
                "environment": live.environment,
                "deployment": live.deployment,
                "audience": "visitor",
                "profile_id": profile,
                "session_id": None,
                "placement": placement,
                "channel": channel,
                "offer_code": offer,
                "categories": join_categories(categories),
                "rank": rank,
                "score": 1.0,
                "probability": 1.0,
                "fallback": False,
                "decided_at": at,
            }
        )
        if expected is not None:
            entries.append(Entry("presented", offer, categories, channel, at))
        for rule in live.inventory.get((placement, offer), ()):
            key = (offer, rule.period(at))
            inventory[key] = min(inventory.get(key, rule.limit), rule.limit)
    return Claim(
        environment=live.environment,
        audience="visitor",
        profile_id=profile,
        expected=expected,
        entries=entries,
        inventory=[InventoryClaim(o, p, limit) for (o, p), limit in inventory.items()],
        propositions=rows,
    )


def _event(
    profile: str | None,
    kind: str,
    offer: str,
    at: dt.datetime,
    *,
    event_id: str | None = None,
    tracking_code: str | None = None,
    live: LivePlan = LIVE,
    name: str | None = "event",
) -> EventRecord:
    """An event resolved as runtime/service.py resolves one."""
    categories = live.offer_categories.get(offer, ())
    channel = live.offer_channels[offer][0]
    counted = counts(kind, profile_id=profile, tracking_code=tracking_code)
    row: dict[str, Any] = {
        "environment": live.environment,
        "event_id": event_id or secrets.token_hex(8),
        "name": name,
        "kind": kind,
        "counted": counted,
        "tracking_code": tracking_code,
        "audience": "visitor",
        "profile_id": profile,
        "session_id": None,
        "offer_code": offer,
        "categories": join_categories(categories),
        "channel": channel,
        "placement": None,
        "at": at,
        "received_at": at,
        "attributes": {},
    }
    entry = Entry(kind, offer, categories, channel, at) if counted else None
    return EventRecord(row, entry)


async def _propose(
    ledger: Ledger, profile: str, offers: list[tuple[str, str]], at: dt.datetime, **kw: Any
) -> ClaimResult:
    """Read the profile, then claim (as a decision does); the claim must succeed."""
    live = kw.pop("live", LIVE)
    seen = await ledger.load(live, "visitor", profile, at)
    result = await ledger.claim(_claim(profile, offers, at, seen.version, live=live, **kw))
    assert result.ok, result
    return result


def _counts(history: ProfileHistory, now: dt.datetime) -> dict[str, int]:
    """What the policies of LIVE would count: presentations within the week (offer A,
    category deals, channel web), rejections within the month and ever."""
    return {
        "A this week": history.count("presented", "offer", "A", now - WEEK),
        "deals this week": history.count("presented", "category", "deals", now - WEEK),
        "loans this week": history.count("presented", "category", "loans", now - WEEK),
        "web this week": history.count("presented", "channel", "web", now - WEEK),
        "email this week": history.count("presented", "channel", "email", now - WEEK),
        "A rejected this month": history.count("rejected", "offer", "A", now - MONTH),
        "A rejected": history.count("rejected", "offer", "A", None),
        "A accepted": history.count("accepted", "offer", "A", None),
    }


def _entries(history: ProfileHistory) -> list[tuple[Any, ...]]:
    return sorted(history.items)


# -- the suite -----------------------------------------------------------------------------
def test_a_proposition_counts_as_a_presentation_once_claimed(backend: Backend) -> None:
    now = _now()

    async def test(ledger: Ledger) -> None:
        before = await ledger.load(LIVE, "visitor", "p1", now)
        assert before.version == 0 and before.items == ()
        result = await _propose(ledger, "p1", [("A", "newsletter"), ("C", "newsletter")], now)
        assert result.version == 1
        after = await ledger.load(LIVE, "visitor", "p1", now)
        assert after.version == 1
        assert _counts(after, now) == {
            "A this week": 1,
            "deals this week": 1,  # A is in loans, under deals: its ancestors count it
            "loans this week": 1,
            "web this week": 0,
            "email this week": 2,
            "A rejected this month": 0,
            "A rejected": 0,
            "A accepted": 0,
        }
        assert (await ledger.load(LIVE, "visitor", "p2", now)).items == ()

    backend.run(test)


def test_windows_count_from_their_first_instant_exactly(backend: Backend) -> None:
    """An entry at exactly `now - window` counts, one a microsecond older does not: for
    propositions, untracked presentations and responses alike."""
    now = _now()

    async def test(ledger: Ledger) -> None:
        await _propose(ledger, "p1", [("A", "banner")], now - WEEK)
        await _propose(ledger, "p1", [("A", "newsletter")], now - WEEK - TICK)
        await _propose(ledger, "p2", [("B", "banner")], now - WEEK)
        events = [
            _event("p2", "presented", "A", now - WEEK),  # untracked: counts
            _event("p2", "presented", "A", now - WEEK - TICK),
            _event("p3", "rejected", "A", now - MONTH),
            _event("p3", "rejected", "A", now - MONTH - TICK),
        ]
        assert await ledger.record_events(ENV, events) == [True] * 4
        p1 = await ledger.load(LIVE, "visitor", "p1", now)
        p2 = await ledger.load(LIVE, "visitor", "p2", now)
        p3 = await ledger.load(LIVE, "visitor", "p3", now)
        assert _counts(p1, now)["A this week"] == 1
        assert [i[4] for i in p1.items] == [now - WEEK]  # the older one is not read at all
        assert _counts(p2, now)["A this week"] == 1
        assert _counts(p2, now)["deals this week"] == 2
        assert _counts(p3, now)["A rejected this month"] == 1
        assert _counts(p3, now)["A rejected"] == 1  # the older one is outside every window
        later = now + TICK  # a microsecond later, the boundary entries are out
        assert _counts(await ledger.load(LIVE, "visitor", "p1", later), later)["A this week"] == 0
        p3_later = await ledger.load(LIVE, "visitor", "p3", later)
        assert _counts(p3_later, later)["A rejected this month"] == 0

    backend.run(test)


def test_responses_count_for_ever_when_a_suppression_has_no_period(backend: Backend) -> None:
    now = _now()
    forever = _plan(FOR_EVER, "for-ever")

    async def test(ledger: Ledger) -> None:
        long_ago = now - dt.timedelta(days=3650)
        events = [
            _event("p1", "rejected", "A", long_ago, live=forever),
            _event("p1", "accepted", "C", long_ago, live=forever),
            _event("p1", "presented", "A", long_ago, live=forever),  # outside the week
        ]
        assert await ledger.record_events(forever.environment, events) == [True] * 3
        history = await ledger.load(forever, "visitor", "p1", now)
        assert _counts(history, now)["A rejected"] == 1
        assert history.count("accepted", "offer", "C", None) == 1
        assert _counts(history, now)["A this week"] == 0
        assert len(history.items) == 2

    backend.run(test)


def test_what_does_not_count_is_not_counted(backend: Backend) -> None:
    """A presentation naming a tracking code confirms its proposition (which already
    counts), a custom event never counts, an event without a profile counts for nobody."""
    now = _now()

    async def test(ledger: Ledger) -> None:
        await _propose(ledger, "p1", [("A", "banner")], now, codes=["T1"])
        events = [
            _event("p1", "presented", "A", now, tracking_code="T1"),
            _event("p1", "custom", "A", now),
            _event(None, "rejected", "A", now),
        ]
        assert [e.entry for e in events] == [None, None, None]
        assert await ledger.record_events(ENV, events) == [True] * 3
        history = await ledger.load(LIVE, "visitor", "p1", now)
        assert _counts(history, now)["A this week"] == 1
        assert history.version == 1  # nothing counted changed

    backend.run(test)


def test_events_are_stored_once_per_event_id(backend: Backend) -> None:
    now = _now()

    async def test(ledger: Ledger) -> None:
        first = [_event("p1", "rejected", "A", now, event_id="e1")]
        assert await ledger.record_events(ENV, first) == [True]
        again = [
            _event("p1", "rejected", "A", now, event_id="e1"),  # a client's retry
            _event("p1", "rejected", "A", now, event_id="e2"),
            _event("p1", "rejected", "A", now, event_id="e2"),  # twice in one batch
        ]
        assert await ledger.record_events(ENV, again) == [False, True, False]
        history = await ledger.load(LIVE, "visitor", "p1", now)
        assert _counts(history, now)["A rejected"] == 2
        assert history.version == 2  # one change per stored event

    backend.run(test)


def test_a_large_batch_of_events_is_stored_once_per_event_id(backend: Backend) -> None:
    """More events in one write than one SQLite statement takes (they are inserted 500 to a
    statement), with repeats inside the batch and across its statements."""
    now = _now()

    async def test(ledger: Ledger) -> None:
        ids = [f"e{i}" for i in range(1201)] + ["e0", "e700", "e1200"]
        events = [_event(f"p{i % 7}", "rejected", "A", now, event_id=e) for i, e in enumerate(ids)]
        assert await ledger.record_events(ENV, events) == [True] * 1201 + [False] * 3
        assert await ledger.record_events(ENV, events[:2]) == [False, False]

    backend.run(test)


def test_a_claim_on_a_changed_history_is_refused(backend: Backend) -> None:
    """Compare-and-set: a claim made from an outdated read (another node claimed, or an
    event counted meanwhile) is refused and changes nothing; read again, it succeeds."""
    now = _now()

    async def test(ledger: Ledger) -> None:
        seen = await ledger.load(LIVE, "visitor", "p1", now)
        await _propose(ledger, "p1", [("C", "newsletter")], now)  # another node, first
        late = await ledger.claim(_claim("p1", [("A", "banner")], now, seen.version))
        assert not late.ok and late.conflict
        await ledger.record_events(ENV, [_event("p1", "rejected", "C", now)])
        stale = await ledger.claim(_claim("p1", [("A", "banner")], now, 1))  # before the event
        assert not stale.ok and stale.conflict
        history = await ledger.load(LIVE, "visitor", "p1", now)
        assert _counts(history, now)["A this week"] == 0
        assert history.version == 2
        await _propose(ledger, "p1", [("A", "banner")], now)
        assert _counts(await ledger.load(LIVE, "visitor", "p1", now), now)["A this week"] == 1

    backend.run(test)


def test_inventories_count_per_day_and_in_total(backend: Backend) -> None:
    """A's 2 a day are spent per UTC day; B's 3 in total across days; an exhausted claim is
    refused whole (the profile's own counts unchanged) and says what is used."""
    now = _now()
    day = now.date().isoformat()
    tomorrow = now + dt.timedelta(days=1)

    async def test(ledger: Ledger) -> None:
        for i in range(2):
            await _propose(ledger, f"v{i}", [("A", "banner")], now)
        refused = await ledger.claim(_claim("v9", [("A", "banner")], now, 0))
        assert not refused.ok and not refused.conflict
        assert refused.exhausted == [("A", day, 2)]
        assert (await ledger.load(LIVE, "visitor", "v9", now)).items == ()
        # the next UTC day has its own counter
        await _propose(ledger, "v9", [("A", "banner")], tomorrow)
        # B: 3 in total, whatever the day
        await _propose(ledger, "w1", [("B", "banner")], now)
        await _propose(ledger, "w2", [("B", "banner")], tomorrow)
        await _propose(ledger, "w3", [("B", "banner")], tomorrow + dt.timedelta(days=1))
        refused = await ledger.claim(_claim("w4", [("B", "banner")], tomorrow, 0))
        assert refused.exhausted == [("B", "total", 3)]
        # anonymous decisions draw on inventories too (no profile to compare)
        refused = await ledger.claim(_claim(None, [("B", "banner")], now, None))
        assert refused.exhausted == [("B", "total", 3)]
        # a claim drawing on a spent inventory is refused whole: its other offer is
        # neither recorded nor counted
        both = _claim("w5", [("C", "newsletter"), ("A", "newsletter")], now, 0)
        refused = await ledger.claim(both)
        assert refused.exhausted == [("A", day, 2)]
        assert (await ledger.load(LIVE, "visitor", "w5", now)).items == ()

    backend.run(test)


def test_a_write_the_database_refuses_changes_no_count(backend: Backend) -> None:
    """The database refuses a claim's propositions (their tracking code is taken) or an
    event (a column it cannot be null): the caller gets the error, and no count and no
    inventory moved. (The database ledger's version is unchanged too; the Redis ledger's
    stays raised, which only makes a node read the profile again.)"""
    now = _now()

    async def test(ledger: Ledger) -> None:
        await _propose(ledger, "p1", [("A", "banner")], now, codes=["TAKEN"])
        seen = await ledger.load(LIVE, "visitor", "p2", now)
        duplicate = _claim("p2", [("A", "banner")], now, seen.version, codes=["TAKEN"])
        with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
            await ledger.claim(duplicate)
        history = await ledger.load(LIVE, "visitor", "p2", now)
        assert history.items == ()
        assert history.version == (seen.version + 1 if backend.redis_url else seen.version)
        # the inventory it drew on was handed back: A's second of the day is still there
        await _propose(ledger, "p3", [("A", "banner")], now)
        refused = await ledger.claim(_claim("p4", [("A", "banner")], now, 0))
        assert refused.exhausted == [("A", now.date().isoformat(), 2)]
        # an event the database refuses is not counted either
        bad = _event("p2", "rejected", "A", now, name=None)
        with pytest.raises(Exception, match=r"(?i)null"):
            await ledger.record_events(ENV, [bad])
        after = await ledger.load(LIVE, "visitor", "p2", now)
        assert after.items == ()  # (Redis counts an event first: its version stays raised)
        assert after.version == (history.version + 1 if backend.redis_url else history.version)
        # and the ledger still works
        await _propose(ledger, "p2", [("C", "newsletter")], now)

    backend.run(test)


def test_a_claim_whose_caller_gave_up_is_counted_if_recorded(backend: Backend) -> None:
    """The caller of a claim is cancelled (its client went away) once the claim's
    propositions are queued: the recorder still writes them, so they must count, and
    their inventory stays spent."""
    now = _now()

    async def test(ledger: Ledger) -> None:
        await _propose(ledger, "p1", [("A", "banner")], now)
        seen = await ledger.load(LIVE, "visitor", "p2", now)
        claim = asyncio.ensure_future(
            ledger.claim(_claim("p2", [("A", "banner")], now, seen.version, codes=["GONE"]))
        )
        recorder = backend.recorder
        assert recorder is not None
        for _ in range(10_000):  # until the propositions wait for the next transaction
            if recorder.queued or claim.done():
                break
            await asyncio.sleep(0)
        assert recorder.queued and not claim.done()
        claim.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await claim
        assert claim.cancelled()
        await asyncio.sleep(0.05)  # the recorder's transaction
        history = await ledger.load(LIVE, "visitor", "p2", now)
        assert _counts(history, now)["A this week"] == 1
        refused = await ledger.claim(_claim("p3", [("A", "banner")], now, 0))
        assert refused.exhausted == [("A", now.date().isoformat(), 2)]

    backend.run(test)


def test_a_write_whose_outcome_is_unknown_is_settled_against_the_history(
    backend: Backend,
) -> None:
    """The connection to the database is lost while a claim's propositions are being
    committed (or the node is killed between Redis and the database): nobody knows whether
    they were written, so Redis keeps counting them, on the safe side, until they are
    settled against the history: the counts of what was not written are taken back, those
    of what was are kept (and put back if Redis lost them meanwhile)."""
    if backend.redis_url is None:
        pytest.skip("the database ledger claims in the transaction that writes")
    now = _now()
    day = now.date().isoformat()

    async def test(ledger: Ledger) -> None:
        assert isinstance(ledger, RedisLedger)
        record = ledger._record

        async def lost(claim: Claim) -> None:
            raise DatabaseDown("lost", written=None)

        async def written_then_lost(claim: Claim) -> None:
            await record(claim)
            raise DatabaseDown("lost", written=None)

        ledger._record = lost  # type: ignore[method-assign]
        with pytest.raises(DatabaseDown):
            await _propose(ledger, "p1", [("A", "banner")], now)
        ledger._record = written_then_lost  # type: ignore[method-assign]
        with pytest.raises(DatabaseDown):
            await _propose(ledger, "p2", [("A", "banner")], now)
        ledger._record = record  # type: ignore[method-assign]
        # until settled, both count (the safe side): A's 2 of the day are spent
        assert _counts(await ledger.load(LIVE, "visitor", "p1", now), now)["A this week"] == 1
        refused = await ledger.claim(_claim("p3", [("A", "banner")], now, 0))
        assert refused.exhausted == [("A", day, 2)]
        await _propose(ledger, "p3", [("C", "newsletter")], now)  # written: its note dropped
        # Redis loses p2's set meanwhile: settling puts p2's entry back
        client = redis.Redis.from_url(ledger.url)
        client.delete(profile_keys(backend.prefix, ENV, "visitor", "p2")[1])
        client.close()

        await asyncio.sleep(0.05)  # the notes of committed writes are dropped off the path
        assert await ledger.settle(ENV, older_than=0) == 2  # p1's and p2's
        assert _counts(await ledger.load(LIVE, "visitor", "p1", now), now)["A this week"] == 0
        assert _counts(await ledger.load(LIVE, "visitor", "p2", now), now)["A this week"] == 1
        assert (ledger.taken_back, ledger.put_back) == (1, 1)
        await _propose(ledger, "p4", [("A", "banner")], now)  # p1's unit of A is back
        refused = await ledger.claim(_claim("p5", [("A", "banner")], now, 0))
        assert refused.exhausted == [("A", day, 2)]
        await asyncio.sleep(0.05)  # the notes of committed writes are dropped off the path
        assert await ledger.settle(ENV, older_than=0) == 0

    backend.run(test)


def test_counts_are_the_same_after_a_restart(backend: Backend) -> None:
    now = _now()
    profiles = ["p1", "p2", "p3"]

    async def write(ledger: Ledger) -> None:
        await _propose(ledger, "p1", [("A", "banner")], now)
        await _propose(ledger, "p2", [("A", "newsletter"), ("C", "newsletter")], now)
        await ledger.record_events(
            ENV,
            [_event("p1", "rejected", "A", now), _event("p3", "presented", "B", now - TICK)],
        )

    async def read(ledger: Ledger) -> list[tuple[int, list[tuple[Any, ...]]]]:
        out = []
        for p in profiles:
            history = await ledger.load(LIVE, "visitor", p, now)
            out.append((history.version, _entries(history)))
        return out

    async def main() -> None:
        async with backend.ledger() as ledger:
            await write(ledger)
            before = await read(ledger)
        async with backend.ledger() as ledger:  # a new node on the same stores
            assert await read(ledger) == before
            # and claims go on from the versions it finds
            await _propose(ledger, "p1", [("C", "newsletter")], now)

    asyncio.run(main())


def test_a_refreshed_history_is_what_a_fresh_read_gives(backend: Backend) -> None:
    """A node's cached history brought up to date (Ledger.refresh: on SQLite, only what
    was written since it was read) counts exactly what reading it whole counts, however
    this node's own claims, another node's claims and events (one dated back) alternate;
    and it is the cached object itself while nothing else changed it."""
    now = _now()

    async def fresh(ledger: Ledger) -> ProfileHistory:
        return await ledger.load(LIVE, "visitor", "p1")

    async def test(ledger: Ledger) -> None:
        cached = await fresh(ledger)

        async def own(offers: list[tuple[str, str]]) -> None:
            # as the runtime does once its claim holds: recorded in the cached history
            claim = _claim("p1", offers, now, cached.version)
            result = await ledger.claim(claim)
            assert result.ok and result.version is not None
            cached.version = result.version
            cached.record(*claim.entries)

        async def other_node() -> None:
            # (offer A is held to 2 a day by inventory, B to 3 in all: C is free)
            await _propose(ledger, "p1", [("C", "newsletter")], now)
            await _propose(ledger, "p2", [("C", "newsletter")], now)  # another profile's rows

        steps: list[Callable[[], Awaitable[object]]] = [
            lambda: own([("A", "banner")]),
            other_node,
            lambda: own([("C", "newsletter")]),
            lambda: own([("B", "banner")]),
            other_node,
            lambda: ledger.record_events(
                ENV,
                [
                    _event("p1", "rejected", "A", now - dt.timedelta(days=3)),  # dated back
                    _event("p1", "accepted", "C", now),
                ],
            ),
            other_node,
            lambda: own([("A", "newsletter")]),
            # a counted event outside the windows and one that does not count: the version
            # moves (or not) with nothing new to count, after one of this node's claims
            lambda: own([("C", "newsletter")]),
            lambda: ledger.record_events(
                ENV,
                [
                    _event("p1", "rejected", "C", now - dt.timedelta(days=40)),
                    _event("p1", "presented", "C", now, tracking_code="t-1"),
                ],
            ),
        ]
        for step in steps:
            await step()
            refreshed = await ledger.refresh(LIVE, "visitor", "p1", cached)
            whole = await fresh(ledger)
            assert refreshed.version == whole.version
            assert _entries(refreshed) == _entries(whole)
            assert _counts(refreshed, now) == _counts(whole, now)
            if refreshed.version == cached.version:
                assert refreshed is cached  # only this node's claims since: nothing read
            cached = refreshed
        assert _counts(cached, now)["A this week"] == 2
        assert _counts(cached, now)["email this week"] == 6
        assert _counts(cached, now)["A rejected this month"] == 1
        if backend.name == "sqlite":  # read past the last ids it had (sql_ledger.py)
            assert cached.after[0] > 0 and cached.after[1] > 0

    backend.run(test)


def test_a_refreshed_history_leaves_out_what_left_its_windows(backend: Backend) -> None:
    """Brought up to date later, a cached history counts what a whole read counts then:
    what it had read before and what has since left the windows (a presentation past the
    week, a rejection past the month) is left out, as a whole read leaves it out."""
    now = _now()
    later = now + dt.timedelta(days=1, hours=1)

    async def test(ledger: Ledger) -> None:
        await _propose(ledger, "p1", [("A", "banner")], now - dt.timedelta(days=6, hours=12))
        await _propose(ledger, "p1", [("C", "newsletter")], now - dt.timedelta(days=2))
        await ledger.record_events(
            ENV,
            [
                _event("p1", "rejected", "A", now - dt.timedelta(days=29, hours=12)),
                _event("p1", "rejected", "C", now - dt.timedelta(days=3)),
            ],
        )
        cached = await ledger.load(LIVE, "visitor", "p1", now)
        assert _counts(cached, now)["A this week"] == 1
        assert _counts(cached, now)["A rejected this month"] == 1
        await _propose(ledger, "p1", [("B", "banner")], now + dt.timedelta(days=1))  # elsewhere
        refreshed = await ledger.refresh(LIVE, "visitor", "p1", cached, now=later)
        whole = await ledger.load(LIVE, "visitor", "p1", later)
        assert refreshed.version == whole.version
        assert _entries(refreshed) == _entries(whole)
        assert _counts(refreshed, later) == _counts(whole, later)
        assert _counts(refreshed, later)["A this week"] == 0
        assert _counts(refreshed, later)["A rejected this month"] == 0

    backend.run(test)


# The same writes read under deployments whose policies look back differently: how many
# entries each of p0..p5 counts (test_the_set_based_history_equals_each_profiles_own).
LOOKBACKS = {
    # capping 7 days, suppression 30 days: p4's and p5's propositions are older than the
    # week, one rejection older than the month, and a custom event never counts
    "week and month": (CATALOG, [2, 2, 2, 3, 0, 0]),
    # suppression for ever: p0's older rejection counts too
    "week and ever": (FOR_EVER, [3, 2, 2, 3, 0, 0]),
    # no capping: propositions and presentations count for nothing, responses for 30 days
    "responses only": (CATALOG.replace(WEEKLY, ""), [1, 0, 1, 0, 0, 0]),
    # neither: nothing is read
    "nothing": (CATALOG.replace(WEEKLY, "").replace(CLOSED, ""), [0, 0, 0, 0, 0, 0]),
}


@pytest.mark.parametrize("lookback", list(LOOKBACKS))
def test_the_set_based_history_equals_each_profiles_own(backend: Backend, lookback: str) -> None:
    """What a batch reads (every profile at once) and what the Redis rebuild loads are
    what the runtime reads for each profile: one definition, emitted three ways, whatever
    the policies look back over."""
    text, expected = LOOKBACKS[lookback]
    live = _plan(text)
    now = _now()

    async def write(ledger: Ledger) -> None:
        for i in range(6):
            offers = [("A", "newsletter"), ("C", "newsletter")] if i % 2 else [("B", "banner")]
            await _propose(ledger, f"p{i}", offers, now - dt.timedelta(days=i * 2), live=live)
        await _propose(ledger, "p1", [("C", "newsletter")], now - WEEK - TICK, live=live)
        await ledger.record_events(
            ENV,
            [
                _event("p0", "rejected", "B", now - MONTH, live=live),
                _event("p0", "rejected", "B", now - MONTH - TICK, live=live),
                _event("p2", "accepted", "A", now - dt.timedelta(days=3), live=live),
                _event("p3", "presented", "C", now - dt.timedelta(days=1), live=live),
                _event("p4", "custom", "A", now, live=live),
            ],
        )

    async def each(ledger: Ledger) -> dict[str, list[tuple[Any, ...]]]:
        return {
            f"p{i}": _entries(await ledger.load(live, "visitor", f"p{i}", now)) for i in range(6)
        }

    async def main() -> dict[str, list[tuple[Any, ...]]]:
        async with backend.ledger() as ledger:
            await write(ledger)
            return await each(ledger)

    own = asyncio.run(main())
    assert [len(own[f"p{i}"]) for i in range(6)] == expected

    def read(audience: str | None) -> list[tuple[str, tuple[Any, ...]]]:
        query = every_profile(live.lookback, ENV, now, audience=audience)
        if query is None:
            return []
        rows = []
        with backend.db.engine.connect() as conn:
            for row in conn.execute(query):
                assert row.audience == "visitor" and isinstance(row.at, dt.datetime)
                chain = split_categories(row.categories)
                rows.append(
                    (row.profile_id, (row.kind, row.offer_code, row.channel, chain, row.at))
                )
        return sorted(rows)

    assert (every_profile(live.lookback, ENV, now) is None) == (not any(expected))
    everyone = read(None)
    assert read("visitor") == everyone and read("household") == []
    every: dict[str, list[tuple[Any, ...]]] = {p: [] for p in own}
    for profile, entry in everyone:
        every[profile].append(entry)
    assert {p: sorted(v) for p, v in every.items()} == own

    if backend.redis_url is not None:  # Redis emptied, then rebuilt from the history
        _flush(backend.redis_url, backend.prefix)
        rebuild_counters(
            backend.db,
            ENV,
            redis_url=backend.redis_url,
            redis_prefix=backend.prefix,
            now=now,
            live=live,
        )

        async def reread() -> dict[str, list[tuple[Any, ...]]]:
            async with backend.ledger() as ledger:
                return await each(ledger)

        assert asyncio.run(reread()) == own
