"""The runtime: decisions, events and sessions, without HTTP (api.py and servlet.py serve it).

A decision runs the engine on the environment's current plan with the profile's counted
history, then claims its propositions (ledger.py): recorded and counted only if nothing
changed meanwhile, else read again and decide again. The node keeps recently read
profile histories and serializes its own decisions per profile, so a profile's second
request does not read the database and never races the node's own first request; races
with other nodes are caught by the claim.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import math
import random
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import msgspec

from overture.catalog import Audience
from overture.engine import Decision, DecisionRequest, PlacementRequest, RequestError
from overture.history.counted import counts
from overture.history.deployed import LivePlan
from overture.history.failures import (
    CountsUnavailable,
    DependencyDown,
    RedisDown,
    Unavailable,
    redis_down,
)
from overture.history.ledger import (
    WITHHELD,
    Claim,
    Entry,
    EventRecord,
    InventoryClaim,
    InventoryView,
    Ledger,
    ProfileHistory,
    ProfileKey,
    RequestHistory,
)
from overture.history.tables import join_categories, split_categories
from overture.history.windows import Lookback
from overture.rules.parser import suggest
from overture.runtime.metrics import Metrics
from overture.runtime.plans import LivePlans
from overture.runtime.profiles import ProfileSource, ProfileTableError
from overture.runtime.schemas import AudienceIn, DecisionIn, EventIn, SessionIn
from overture.runtime.sessions import Session, SessionStore

__all__ = ["NotServed", "Runtime", "SessionNotFound", "Unavailable"]

MAX_PROFILE_ID = 128  # what the history's columns hold (schemas.Text)
MAX_EVENT_ID = 128
RACE_MEMORY = 60.0  # seconds a lost claim keeps the node checking cached versions

# Why a decision is degraded (its answer's `degraded`), and what its warning tells people
COUNTS = "counts"
PROFILE = "profile"
_DEGRADED_COUNTS = (
    "decided without the offers that capping, suppression or inventory policies count, "
    "because their counts cannot be checked now ({why}); other offers were decided as usual"
)
_DEGRADED_PROFILE = (
    "the profile table could not be read (the database is not answering): decided with the "
    "profile as this node last read it, {age:.0f} s ago"
)


class NotServed(LookupError):
    """The environment is not served by this node."""


class SessionNotFound(LookupError):
    pass


class _KeyedLocks:
    """Mutual exclusion per key, on the event loop: the holder of a key is in `_waiting`,
    with the futures of those waiting for it in turn. A key nobody holds costs nothing to
    take (no lock object, no context manager: this runs for every decision)."""

    def __init__(self) -> None:
        self._waiting: dict[ProfileKey, list[asyncio.Future[None]]] = {}

    async def acquire(self, key: ProfileKey) -> None:
        waiting = self._waiting.get(key)
        if waiting is None:
            self._waiting[key] = []
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiting.append(turn)
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():
                self.release(key)  # handed the key while being cancelled: pass it on
            elif turn in waiting:
                waiting.remove(turn)
            raise

    def release(self, key: ProfileKey) -> None:
        waiting = self._waiting[key]
        while waiting:
            turn = waiting.pop(0)
            if not turn.done():
                turn.set_result(None)  # the key passes to the next in line
                return
        del self._waiting[key]


class Runtime:
    def __init__(
        self,
        plans: LivePlans,
        ledger: Ledger,
        sessions: SessionStore,
        profiles: ProfileSource,
        metrics: Metrics,
        *,
        max_attempts: int = 20,
        cached_profiles: int = 20_000,
        recent_propositions: int = 100_000,
        decision_times: bool = False,
        event_skew_seconds: float = 300.0,
    ) -> None:
        self.decision_times = decision_times  # requests may say when (demo traffic)
        self.event_skew = dt.timedelta(seconds=event_skew_seconds)  # events dated ahead
        self.plans = plans
        self.ledger = ledger
        self.sessions: SessionStore = _GuardedSessions(sessions)
        self.profiles = profiles
        self.metrics = metrics
        self.max_attempts = max_attempts
        self.inventory = InventoryView()
        self._locks = _KeyedLocks()
        # by profile: the history as read with the lookback windows it was read for (a new
        # deployment with the same windows keeps them: a plan swap empties no cache)
        self._histories: OrderedDict[ProfileKey, tuple[Lookback, ProfileHistory]] = OrderedDict()
        self._max_histories = cached_profiles
        # when a claim last lost a race: another node or worker writes these profiles too
        self._raced_at = -math.inf
        # tracking code -> proposition, for events posted to the node that decided
        self._recent: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._max_recent = recent_propositions

    def live(self, environment: str) -> LivePlan:
        if not self.plans.serves(environment):
            raise NotServed(
                f"this node does not serve environment {environment!r}; "
                f"it serves: {', '.join(self.plans.environments) or 'none'}"
            )
        live = self.plans.get(environment)
        if live is None:
            raise Unavailable(
                f"environment {environment!r} has no deployment yet; deploy a catalog to it "
                f"(overture deploy --env {environment})"
            )
        return live

    # -- decisions -----------------------------------------------------------------------
    async def decide(
        self, environment: str, ask: DecisionIn, session: Session | None = None
    ) -> dict[str, Any]:
        live = self.live(environment)
        plan = live.plan
        warnings: list[str] = list(session.warnings) if session else []
        name = ask.audience or (session.audience if session else None) or plan.default_audience
        audience = _audience(live, name)
        profile_id = ask.profile_id or (session.profile_id if session else None)
        profile: dict[str, Any] = {}
        degraded: list[str] = []
        if session is not None and (ask.profile_id is None or ask.profile_id == session.profile_id):
            profile.update(session.profile)
        elif profile_id is not None:
            profile.update(await self._profile(audience, profile_id, warnings, degraded))
        profile.update(ask.profile)
        if profile_id is None:
            profile_id = _inline_id(profile, audience)
        context = {**session.context, **ask.context} if session else ask.context
        request = DecisionRequest(
            tuple(PlacementRequest(p.placement, p.count) for p in ask.placements),
            audience=name,
            profile=profile,
            profile_id=profile_id,
            context=context,
            categories=frozenset(ask.categories),
            themes=frozenset(ask.themes),
            explain=ask.explain,
            exclude=frozenset(session.responded) if session else frozenset(),
            now=self._decision_time(ask.at) or _utcnow(),
            segments=ask.record,  # recorded with the propositions, for the reports
        )
        session_id = session.id if session else None
        decision, withheld = await self._decide_and_claim(live, request, ask.record, session_id)
        if withheld is not None:
            degraded.insert(0, COUNTS)
            warnings.append(_DEGRADED_COUNTS.format(why=withheld))
        self.metrics.decisions.labels(environment).inc()
        for why in degraded:
            self.metrics.degraded.labels(environment, why).inc()
        if session is not None:
            session.remember(
                [
                    (p.tracking_code, p.offer_code, p.placement, _channel(live, p.placement))
                    for p in decision.propositions
                ]
            )
            await self.sessions.put(session)
        answer = decision.to_dict(  # the answer's shape is the engine's, `decide --json`'s too
            environment=live.environment,
            deployment=live.deployment,
            recorded=ask.record,
            session_id=session_id,
            warnings=warnings,
        )
        if degraded:  # decided with less than usual (docs/runtime.md, "Failures")
            answer["degraded"] = degraded
        return answer

    def _decision_time(self, at: dt.datetime | None) -> dt.datetime | None:
        if at is None:
            return None
        if not self.decision_times:
            raise RequestError(
                [
                    "`at` is only taken by a demo server (overture serve --accept-decision-times), "
                    "to fill past "
                    "days with demo traffic; leave it out: a decision happens when it is asked"
                ]
            )
        try:
            return _naive_utc(at)
        except OverflowError:
            raise RequestError([f"time {at} is out of range once in UTC"]) from None

    async def _decide_and_claim(
        self, live: LivePlan, request: DecisionRequest, record: bool, session_id: str | None
    ) -> tuple[Decision, str | None]:
        """The decision, and why counts were withheld from it (None: they were not)."""
        env = live.environment
        profile_id = request.profile_id
        profile_key = None
        if profile_id is not None and live.lookback.counts_anything:
            profile_key = (env, request.audience or live.plan.default_audience, profile_id)
        if profile_key is not None:
            await self._locks.acquire(profile_key)
        try:
            return await self._attempts(live, request, record, session_id, profile_key)
        finally:
            if profile_key is not None:
                self._locks.release(profile_key)

    async def _attempts(
        self,
        live: LivePlan,
        request: DecisionRequest,
        record: bool,
        session_id: str | None,
        profile_key: ProfileKey | None,
    ) -> tuple[Decision, str | None]:
        """Decide and claim until a claim holds (or give up): see the module's doc.

        When the counts cannot be read or checked (Redis down, its counters being rebuilt,
        the database down), the decision is made with WITHHELD counts: the offers policies
        count are left out, the others decided and recorded as usual (a degraded answer)."""
        env = live.environment
        now = request.now
        assert now is not None
        withheld: str | None = None
        for attempt in range(self.max_attempts):
            history = None
            if profile_key is not None and withheld is None:
                try:
                    history = await self._history(live, profile_key)
                except (CountsUnavailable, DependencyDown) as exc:
                    withheld = _why(exc)
            view = (
                WITHHELD if withheld is not None else RequestHistory(env, history, self.inventory)
            )
            decision = live.plan.decide(request, view)
            propositions = decision.propositions
            if not record or not propositions:
                return decision, withheld
            claim = self._claim(
                live, decision, history, session_id, now, counted=profile_key is not None
            )
            claim.unchecked = withheld is not None
            try:
                result = await self.ledger.claim(claim)
            except CountsUnavailable as exc:  # gone since the read: decide again without
                withheld = _why(exc)
                if profile_key is not None:
                    self._histories.pop(profile_key, None)
                continue
            if result.ok:
                if claim.unchecked and profile_key is not None:
                    self._histories.pop(profile_key, None)  # read again when counts are back
                elif history is not None and profile_key is not None:
                    assert result.version is not None
                    history.version = result.version
                    history.record(*claim.entries)
                self._remember(claim.propositions)
                return decision, withheld
            self.metrics.claim_conflicts.labels(env).inc()
            if result.conflict:  # another node or worker changed this profile meanwhile
                self._raced_at = time.monotonic()  # (a spent inventory is not a race)
                if profile_key is not None:
                    self._histories.pop(profile_key, None)
                    # it may be deciding for this profile right now: let it finish (a random
                    # pause, so that two nodes do not keep colliding in step)
                    await asyncio.sleep(random.uniform(0, 0.001 * (attempt + 1)))
            for offer, period, used in result.exhausted:
                self.inventory.saw(env, offer, period, used)
        raise Unavailable(
            f"could not record a decision for profile {request.profile_id!r} after "
            f"{self.max_attempts} attempts: other nodes keep changing its history; retry"
        )

    def _claim(
        self,
        live: LivePlan,
        decision: Decision,
        history: ProfileHistory | None,
        session_id: str | None,
        now: dt.datetime,
        *,
        counted: bool,
    ) -> Claim:
        """The claim of a decision's propositions; `counted`: their entries too (the
        profile's history is counted, whether or not it could be read)."""
        rows: list[dict[str, Any]] = []
        entries: list[Entry] = []
        inventory: dict[tuple[str, str], int] = {}
        segments = " ".join(decision.segments)
        if len(segments) > 2000:  # the column's size: whole names only
            segments = segments[:2001].rsplit(" ", 1)[0]
        for pd in decision.placements:
            for p in pd.propositions:
                categories = live.offer_categories.get(p.offer_code, ())
                rows.append(
                    {
                        "tracking_code": p.tracking_code,
                        "environment": live.environment,
                        "deployment": live.deployment,
                        "audience": decision.audience,
                        "profile_id": decision.profile_id,
                        "session_id": session_id,
                        "placement": p.placement,
                        "channel": pd.channel,
                        "offer_code": p.offer_code,
                        "categories": join_categories(categories),
                        "segments": segments,
                        "rank": p.rank,
                        "score": p.score,
                        "probability": p.probability,
                        "fallback": p.fallback,
                        "decided_at": now,
                    }
                )
                if counted:
                    entries.append(Entry("presented", p.offer_code, categories, pd.channel, now))
                for rule in live.inventory.get((p.placement, p.offer_code), ()):
                    key = (p.offer_code, rule.period(now))
                    inventory[key] = min(inventory.get(key, rule.limit), rule.limit)
        return Claim(
            environment=live.environment,
            audience=decision.audience,
            profile_id=decision.profile_id,
            expected=history.version if history is not None else None,
            entries=entries,
            inventory=[
                InventoryClaim(o, period, limit) for (o, period), limit in inventory.items()
            ],
            propositions=rows,
        )

    async def _history(self, live: LivePlan, key: ProfileKey) -> ProfileHistory:
        """The profile's counted history: cached by the node, read when not cached.

        Where other nodes or workers write the same profiles (seen by a claim that lost a
        race in the last RACE_MEMORY seconds), a cached history may be stale, and deciding
        with it would be wasted: the claim would lose and the decision be made again
        (a fifth of the decisions with two SQLite workers on random profiles). So then the
        ledger brings it up to date first (Ledger.refresh: one small read; the history,
        or on SQLite what was written since, only when it moved)."""
        cached = self._histories.get(key)
        if cached is not None and cached[0] == live.lookback:
            history = cached[1]
            if time.monotonic() - self._raced_at > RACE_MEMORY:
                self._histories.move_to_end(key)
                return history
            current = await self.ledger.refresh(live, key[1], key[2], history)
            if current is history:
                # (the read may suspend: an event or an eviction may have dropped it since)
                if self._histories.get(key) is cached:
                    self._histories.move_to_end(key)
                return history
            history = current
        else:
            history = await self.ledger.load(live, key[1], key[2])
        self._histories[key] = (live.lookback, history)
        if len(self._histories) > self._max_histories:
            self._histories.popitem(last=False)
        return history

    def _remember(self, rows: list[dict[str, Any]]) -> None:
        recent = self._recent
        for row in rows:
            recent[row["tracking_code"]] = row
        while len(recent) > self._max_recent:
            recent.popitem(last=False)

    async def _profile(
        self,
        audience: Audience,
        profile_id: str,
        warnings: list[str],
        degraded: list[str] | None = None,
    ) -> dict[str, Any]:
        if audience.profile_table is None:
            return {}
        try:
            row, age = await self.profiles.lookup(audience, profile_id)
        except ProfileTableError as exc:
            warnings.append(str(exc))
            return {}
        if age is not None:  # the database is down: the row as last read
            warnings.append(_DEGRADED_PROFILE.format(age=age))
            if degraded is not None:
                degraded.append(PROFILE)
        if row is None:
            warnings.append(
                f"profile {profile_id!r} is not in table {audience.profile_table!r}; "
                "decided with the attributes the request sent"
            )
            return {}
        return row

    # -- events --------------------------------------------------------------------------
    async def post_events(
        self, environment: str, events: list[EventIn], session: Session | None = None
    ) -> dict[str, Any]:
        """Store events; each gets a result: stored, duplicate or rejected (with why)."""
        live = self.live(environment)
        if session is not None:
            events = _expand_contacts(live, events, session)
        known = await self._propositions(
            [e.tracking_code for e in events if e.tracking_code], session
        )
        received = _utcnow()
        results: list[dict[str, Any]] = []
        records: list[EventRecord] = []
        positions: list[int] = []
        for event in events:
            event_id = event.event_id or uuid.uuid4().hex
            try:
                record = self._resolve(
                    live,
                    event=event,
                    event_id=event_id,
                    known=known,
                    session=session,
                    received=received,
                )
            except ValueError as exc:
                results.append({"event_id": event_id, "status": "rejected", "error": str(exc)})
                continue
            positions.append(len(results))
            results.append({"event_id": event_id, "status": "pending", "kind": record.row["kind"]})
            records.append(record)
        stored = await self.ledger.record_events(environment, records) if records else []
        for index, record, new in zip(positions, records, stored, strict=True):
            results[index]["status"] = "stored" if new else "duplicate"
            row = record.row
            if new:
                self.metrics.events.labels(environment, row["kind"]).inc()
                if record.entry is not None and row["profile_id"] is not None:
                    self._histories.pop((environment, row["audience"], row["profile_id"]), None)
            if session is not None and row["kind"] in ("accepted", "rejected"):
                code = row["offer_code"]
                if code and code not in session.responded:
                    session.responded.append(code)
        if session is not None:
            await self.sessions.put(session)
        counts = {s: sum(r["status"] == s for r in results) for s in ("stored", "duplicate")}
        return {
            "stored": counts["stored"],
            "duplicates": counts["duplicate"],
            "rejected": len(results) - counts["stored"] - counts["duplicate"],
            "results": results,
        }

    async def _propositions(
        self, codes: list[str | None], session: Session | None
    ) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        missing = []
        for code in codes:
            if code is None:
                continue
            row = self._recent.get(code)
            if row is not None:
                found[code] = row
            else:
                missing.append(code)
        if missing:
            found.update(await self.ledger.propositions(missing))
        return found

    def _resolve(
        self,
        live: LivePlan,
        *,
        event: EventIn,
        event_id: str,
        known: Mapping[str, Mapping[str, Any]],
        session: Session | None,
        received: dt.datetime,
    ) -> EventRecord:
        env = live.environment
        try:
            at = _naive_utc(event.at) if event.at is not None else received
        except OverflowError:
            raise ValueError(f"time {event.at} is out of range once in UTC") from None
        if at - received > self.event_skew:  # it would count against caps until then
            raise ValueError(_in_the_future(at, received, self.event_skew))
        audience = event.audience or (session.audience if session else None)
        profile_id = event.profile_id or (session.profile_id if session else None)
        offer, channel, placement = event.offer, event.channel, event.placement
        categories: tuple[str, ...] = ()
        segments = ""
        if event.tracking_code is not None:
            prop = known.get(event.tracking_code)
            if prop is None or prop["environment"] != env:
                raise ValueError(
                    f"unknown tracking code {event.tracking_code!r}: use a tracking code a "
                    f"decision of environment {env!r} returned, or name the offer and profile"
                )
            for field, given in (("offer_code", offer), ("profile_id", event.profile_id)):
                if given is not None and given != prop[field]:
                    raise ValueError(
                        f"{field.split('_')[0]} {given!r} does not match tracking code "
                        f"{event.tracking_code!r}, which was for {prop[field]!r}"
                    )
            offer, channel, placement = prop["offer_code"], prop["channel"], prop["placement"]
            audience, profile_id = prop["audience"], prop["profile_id"]
            categories = split_categories(prop["categories"])
            segments = prop.get("segments") or ""
        elif offer is None:
            channel = channel or (session.channel if session else None)
            if live.event_kind(channel, event.name) != "custom" or (
                profile_id is None and session is None
            ):
                raise ValueError(
                    "an event names what it is about: give tracking_code (from a decision), "
                    "or offer (with profile_id for a known profile); only a custom event "
                    "may name no offer, for a profile or in a session"
                )
        else:
            if not live.knows_offer(offer):
                raise ValueError(_unknown_offer(live, offer))
            categories = live.offer_categories.get(offer, ())
            if placement is not None and channel is None:
                channel = _channel(live, placement)
            channels = live.offer_channels.get(offer, ())
            if channel is None and len(channels) == 1:
                channel = channels[0]  # the only channel the offer appears on
        audience = audience or live.plan.default_audience
        kind = live.event_kind(channel, event.name)
        counted = counts(kind, profile_id=profile_id, tracking_code=event.tracking_code)
        row = {
            "environment": env,
            "event_id": event_id,
            "name": event.name,
            "kind": kind,
            "counted": counted,
            "tracking_code": event.tracking_code,
            "audience": audience,
            "profile_id": profile_id,
            "session_id": event.session_id or (session.id if session else None),
            "offer_code": offer,
            "categories": join_categories(categories),
            "segments": segments,
            "channel": channel,
            "placement": placement,
            "at": at,
            "received_at": received,
            "attributes": event.attributes,
        }
        entry = Entry(kind, offer or "", categories, channel or "", at) if counted else None
        return EventRecord(row, entry)

    # -- sessions ------------------------------------------------------------------------
    async def start_session(self, environment: str, body: SessionIn) -> Session:
        live = self.live(environment)
        session_id = body.session_id or secrets.token_urlsafe(16)
        if body.rely_on_existing:
            existing = await self.sessions.get(environment, session_id)
            if existing is not None:
                return existing
        name = body.audience or live.plan.default_audience
        session = Session(
            id=session_id,
            environment=environment,
            audience=name,
            started=_utcnow().timestamp(),
        )
        await self._identify(live, session, body.audience, body.profile_id, body.profile)
        session.context = dict(body.context)
        await self.sessions.put(session)
        self.metrics.sessions_started.labels(environment).inc()
        return session

    async def session(self, environment: str, session_id: str) -> Session:
        self.live(environment)
        session = await self.sessions.get(environment, session_id)
        if session is None:
            raise SessionNotFound(
                f"no session {session_id!r} in {environment!r}: it ended, expired after "
                f"{self.sessions.idle_seconds:.0f} s idle, or never started; start one"
            )
        return session

    async def set_audience(self, environment: str, session_id: str, body: AudienceIn) -> Session:
        """Switch a session's audience or profile (anonymous visitor logs in)."""
        live = self.live(environment)
        session = await self.session(environment, session_id)
        await self._identify(live, session, body.audience, body.profile_id, body.profile)
        session.context.update(body.context)
        await self.sessions.put(session)
        return session

    async def _identify(
        self,
        live: LivePlan,
        session: Session,
        audience_name: str | None,
        profile_id: str | None,
        inline: Mapping[str, Any],
    ) -> None:
        name = audience_name or session.audience
        audience = _audience(live, name)
        warnings: list[str] = []
        profile: dict[str, Any] = {}
        if profile_id is not None:
            profile.update(await self._profile(audience, profile_id, warnings))
        profile.update(inline)
        if profile_id is None:
            profile_id = _inline_id(profile, audience)
        session.audience = name
        session.profile_id = profile_id
        session.profile = profile
        session.warnings = warnings

    async def end_session(self, environment: str, session_id: str) -> bool:
        self.live(environment)
        return await self.sessions.delete(environment, session_id)


SESSIONS_DOWN = (
    "sessions are kept in Redis, which is not answering, so this session cannot be read or "
    "saved now; retry in a few seconds"
)


class _GuardedSessions:
    """The session store, its Redis failures told as RedisDown (503, retry)."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store
        self.idle_seconds = store.idle_seconds

    async def get(self, environment: str, session_id: str) -> Session | None:
        try:
            return await self.store.get(environment, session_id)
        except Exception as exc:
            raise _sessions_failed(exc) from exc

    async def put(self, session: Session) -> None:
        try:
            await self.store.put(session)
        except Exception as exc:
            raise _sessions_failed(exc) from exc

    async def delete(self, environment: str, session_id: str) -> bool:
        try:
            return await self.store.delete(environment, session_id)
        except Exception as exc:
            raise _sessions_failed(exc) from exc

    def count(self) -> int | None:
        return self.store.count()

    async def close(self) -> None:
        await self.store.close()


def _sessions_failed(exc: Exception) -> Exception:
    return RedisDown(SESSIONS_DOWN) if redis_down(exc) else exc


def _why(exc: Exception) -> str:
    """Why counts were withheld, for the answer's warning."""
    if isinstance(exc, DependencyDown):
        return f"the {exc.dependency} is not answering"
    return str(exc)


def _expand_contacts(live: LivePlan, events: list[EventIn], session: Session) -> list[EventIn]:
    """In a session, a contact event that names no offer logs a contact for every offer of
    the last answer (as Interact does); each gets its own event id."""
    out: list[EventIn] = []
    for event in events:
        if event.tracking_code is not None or event.offer is not None or not session.last:
            out.append(event)
            continue
        channel = session.offers.get(session.last[0], ["", "", ""])[2]
        if live.event_kind(channel or None, event.name) != "presented":
            out.append(event)
            continue
        for i, code in enumerate(session.last):
            event_id = _contact_id(event.event_id, i + 1) if event.event_id else None
            out.append(msgspec.structs.replace(event, tracking_code=code, event_id=event_id))
    return out


def _contact_id(event_id: str, n: int) -> str:
    """The id of the `n`th offer's contact logged by event `event_id`: `<id>.<n>`, or, when
    that would not fit the history's column (an id of up to MAX_EVENT_ID characters is
    accepted), the id cut short and a digest of it whole, so that it stays unique and the
    same each time the event is sent (stored once)."""
    derived = f"{event_id}.{n}"
    if len(derived) <= MAX_EVENT_ID:
        return derived
    tail = f"~{hashlib.sha256(event_id.encode()).hexdigest()[:16]}.{n}"
    return event_id[: MAX_EVENT_ID - len(tail)] + tail


def _inline_id(profile: Mapping[str, Any], audience: Audience) -> str | None:
    """The profile id an inline profile carries in its id field, bounded as `profile_id`."""
    value = profile.get(audience.id_field)
    if value is None:
        return None
    text = str(value)
    if not 0 < len(text) <= MAX_PROFILE_ID:
        raise RequestError(
            [
                f"profile.{audience.id_field}: the profile id must be 1 to {MAX_PROFILE_ID} "
                f"characters, not {len(text)}"
            ]
        )
    return text


def _audience(live: LivePlan, name: str) -> Audience:
    for audience in live.catalog.audiences:
        if audience.name == name:
            return audience
    known = [a.name for a in live.catalog.audiences]
    hint = suggest(name, known)
    raise RequestError(
        [f"unknown audience {name!r}" + (f"; {hint}" if hint else f"; known: {', '.join(known)}")]
    )


def _channel(live: LivePlan, placement: str) -> str:
    compiled = live.plan.placements.get(placement)
    return compiled.channel if compiled is not None else ""


def _unknown_offer(live: LivePlan, offer: str) -> str:
    # (no closest match: comparing with every code of a large catalog, for each event of
    # a batch, would hold the event loop; a code in another case is what clients get wrong)
    same = live.offer_in_any_case(offer)
    return (
        f"unknown offer {offer!r}: no deployment of environment {live.environment!r} has it"
        + (f" (codes are case-sensitive: did you mean {same!r}?)" if same else "")
        + "; name an offer of the catalog deployed here by its code, or send the tracking "
        "code of the decision that proposed it"
    )


def _in_the_future(at: dt.datetime, now: dt.datetime, skew: dt.timedelta) -> str:
    return (
        f"the event is in the future: `at` {_iso(at)} is {_span(at - now)} ahead of the "
        f"node's clock ({_iso(now)}), and an event may be at most {_span(skew)} ahead; "
        "send when it happened (in UTC, or with its offset), or leave `at` out for the "
        "time it is received"
    )


def _span(delta: dt.timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:,.0f} days"


def _iso(value: dt.datetime) -> str:
    return value.isoformat(timespec="seconds") + "Z"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _naive_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
