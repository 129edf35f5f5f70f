"""The ledger in Redis (`--redis URL`): counts and claims in Redis, history in the database.

Per profile, two sorted sets scored by time hold what policies count: `…:p:` the
propositions and untracked presentations (trimmed to the longest capping window), `…:r:`
the acceptances and rejections (trimmed to the longest suppression period, or kept when a
policy suppresses for ever); a `…:v:` counter is the profile's version. Inventory
counters are plain integers per offer and period. A claim is one Lua script, which Redis
runs atomically: compare the version, check every inventory, then add and increment, or
change nothing. So every node sharing the Redis sees one exact count.

The history is written to the database and stays the record (what `overture counters
rebuild` reloads Redis from). The counts in Redis are kept in step with it (docs/runtime.md,
"Failures"):

- **A write that failed.** A claim is counted in Redis first (that is what makes it exact
  across nodes), then its propositions are written; a counted event likewise. The same
  script leaves a note in the environment's `…:claims` set (what it added, scored by when).
  Once the write commits, the note is dropped (the notes of a turn of the loop in one round
  trip, off the request's path). When the write certainly failed (nothing committed) the
  counts are taken back at once; when its fate is unknown (the connection lost during the
  commit, the node killed between the two) the note stays, and once it is SETTLE_AFTER
  seconds old one node at a time (`…:claims:lock`) checks it against the database:
  written, the note is dropped (and what it added put back if Redis lost it meanwhile);
  not written, its counts are taken back. A stored duplicate event keeps its count only if
  it is the same entry.
- **Redis emptied.** `…:counters` is written once an environment's counters have been built
  from the history (rebuild.py: by `overture counters rebuild` or by a node). Loads and
  claims check it in their script: without it (Redis restarted empty, flushed, a new
  environment) nothing is claimed, decisions leave out the offers policies count, and a
  node rebuilds the counters from the history under `…:counters:lock` (so one node does
  it), then writes the key. A node starting waits for that before it serves; a node
  serving notices at its next read or within a second (`upkeep`).
- **Redis down.** Decisions leave out the offers policies count (their counts cannot be
  checked); their propositions are recorded in the database, and the entries Redis keeps
  for them are added when it answers again (held by the node meanwhile, up to
  MAX_BACKLOG: past that, or if the node stops first, the environment's counters are
  rebuilt instead, or they wait for the next rebuild; no current policy counts them).
  Events that count for policies are refused with 503 (they could not be counted).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import secrets
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import msgspec

from overture.history.deployed import LivePlan
from overture.history.failures import (
    CountsUnavailable,
    DependencyState,
    RedisDown,
    database_down,
    reason,
    redis_down,
)
from overture.history.ledger import Claim, ClaimResult, Entry, EventRecord, ProfileHistory
from overture.history.recorder import Recorder, rolled_back
from overture.history.redis_batch import ScriptBatch
from overture.history.sql_ledger import SqlLedger, insert_propositions
from overture.history.tables import join_categories, split_categories
from overture.history.windows import Lookback, inventory_period
from overture.store import Database
from overture.store.raw import Tx, as_time

log = logging.getLogger("overture.runtime")

SETTLE_AFTER = 60.0  # seconds: a claim's write has succeeded or failed for good by then
MAX_BACKLOG = 100_000  # entries held while Redis is down (past that: rebuild instead)
START_WAIT = 60.0  # seconds a starting node waits for counters being rebuilt
_SETTLE_EVERY = 5.0  # seconds between two settling rounds of a node
_SETTLE_BATCH = 1000
_SETTLE_ROUNDS = 100  # batches per round at most (the rest: next round)

COUNTS_DOWN = "Redis, which keeps the counts, is not answering"
COUNTS_MISSING = "the counts are being rebuilt from the history (Redis lost them)"
EVENTS_REFUSED = (
    "Redis, which keeps what policies count, is not answering, so events that count "
    "(accepted, rejected, or presented without a tracking code) cannot be stored now; "
    "nothing of this request was stored; retry in a few seconds"
)

_LOAD = """
if redis.call('EXISTS', KEYS[4]) == 0 then return {-1} end
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
local p = redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[1], '+inf', 'WITHSCORES')
local r = redis.call('ZRANGEBYSCORE', KEYS[3], ARGV[2], '+inf', 'WITHSCORES')
return {v, p, r}
"""

# KEYS: version, presented set, counters key, notes, inventory keys...
# ARGV: mode ('' = no comparison, 'u' = unchecked, else the version expected),
#       n inventories, limits..., ttls..., now, presented window (s, 0 = keep),
#       retention (s, 0 = keep), note ('' = none), then score/member pairs
# A claim sent again after its answer was lost (redis-py retries once on a broken
# connection, which may break after the script ran) finds its own note: it answers -4 and
# the version, and adds nothing twice (the note is unique: it holds the tracking codes).
_CLAIM = """
local mode = ARGV[1]
local n = tonumber(ARGV[2])
local note = ARGV[6 + 2 * n]
if note ~= '' and redis.call('ZSCORE', KEYS[4], note) then
  return {-4, tonumber(redis.call('GET', KEYS[1]) or '0')}
end
if mode ~= 'u' and redis.call('EXISTS', KEYS[3]) == 0 then return {-3} end
if mode ~= '' and mode ~= 'u' then
  local v = tonumber(redis.call('GET', KEYS[1]) or '0')
  if v ~= tonumber(mode) then return {-1, v} end
end
for i = 1, n do
  local used = tonumber(redis.call('GET', KEYS[4 + i]) or '0')
  if used >= tonumber(ARGV[2 + i]) then return {-2, i, used} end
end
for i = 1, n do
  redis.call('INCR', KEYS[4 + i])
  local ttl = tonumber(ARGV[2 + n + i])
  if ttl > 0 then redis.call('EXPIRE', KEYS[4 + i], ttl) end
end
local now = tonumber(ARGV[3 + 2 * n])
if note ~= '' then redis.call('ZADD', KEYS[4], now, note) end
if mode == '' then return {0} end
local window = tonumber(ARGV[4 + 2 * n])
local keep = tonumber(ARGV[5 + 2 * n])
for j = 7 + 2 * n, #ARGV, 2 do
  redis.call('ZADD', KEYS[2], ARGV[j], ARGV[j + 1])
end
if window > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - window))
  redis.call('EXPIRE', KEYS[2], window)
end
local v = redis.call('INCR', KEYS[1])
if keep > 0 then redis.call('EXPIRE', KEYS[1], keep) end
return {v}
"""

# What a note says was added, taken back (once: only while the note is there).
# KEYS: the set it added to (or any key), notes, inventory keys...
# ARGV: the note, the members it added
_TAKE_BACK = """
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return 0 end
if #ARGV > 1 then redis.call('ZREM', KEYS[1], unpack(ARGV, 2)) end
for i = 3, #KEYS do
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  if used > 0 then redis.call('DECR', KEYS[i]) end
end
return 1
"""

# A note whose write is in the history: dropped, and what it added put back if Redis lost
# it meanwhile (a version raised then, so that cached reads are made again).
# KEYS: version (or any key), the set, notes; ARGV: the note, score/member pairs
_SETTLE = """
redis.call('ZREM', KEYS[3], ARGV[1])
local added = 0
for j = 2, #ARGV, 2 do
  added = added + redis.call('ZADD', KEYS[2], ARGV[j], ARGV[j + 1])
end
if added > 0 then redis.call('INCR', KEYS[1]) end
return added
"""

# A counted event, before it is stored (the version raised if the entry is new: a retry
# of a stored event changes nothing). KEYS: version, set, notes
# ARGV: score, member, ttl of the set (0 = keep), retention, now, note
_COUNT = """
local added = redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
if added == 1 then
  redis.call('INCR', KEYS[1])
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[6])
end
if tonumber(ARGV[4]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[4]) end
return added
"""

# An entry recorded while Redis was down, added once it answers.
# KEYS: version, set; ARGV: score, member, ttl of the set (0 = keep), retention
_ADD = """
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
local v = redis.call('INCR', KEYS[1])
if tonumber(ARGV[4]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[4]) end
return v
"""

# KEYS: a lock; ARGV: its holder's token: released only by its holder (the settling lock
# here, the rebuild lock in rebuild.py)
RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_DAY_TTL = 2 * 86400  # a day's inventory counter outlives its day


def profile_keys(prefix: str, env: str, audience: str, profile_id: str) -> tuple[str, str, str]:
    """A profile's keys: its version, its presented set, its responses set."""
    base = f"{prefix}:{env}:{audience}:{profile_id}"
    return f"{base}:v", f"{base}:p", f"{base}:r"


def inventory_key(prefix: str, env: str, offer_code: str, period: str) -> str:
    return f"{prefix}:{env}:inventory:{offer_code}:{period}"


def counters_key(prefix: str, env: str) -> str:
    """Written once the environment's counters are built from the history; gone when Redis
    lost them (see the module's doc)."""
    return f"{prefix}:{env}:counters"


def counters_lock_key(prefix: str, env: str) -> str:
    """Held by whoever rebuilds the environment's counters."""
    return f"{prefix}:{env}:counters:lock"


def notes_key(prefix: str, env: str) -> str:
    """The notes of claims and counted events not yet settled against the history."""
    return f"{prefix}:{env}:claims"


def inventory_ttl(period: str) -> int:
    """Seconds an inventory counter lives after its last increment (0: for ever)."""
    return 0 if period == inventory_period(None) else _DAY_TTL


class RedisLedger(SqlLedger):
    """SqlLedger's database reads and writes, with counts and claims moved to Redis."""

    def __init__(
        self,
        db: Database,
        recorder: Recorder,
        readers: ThreadPoolExecutor,
        url: str,
        prefix: str = "overture",
        *,
        rollups: bool = True,
        state: DependencyState | None = None,
        settle_after: float = SETTLE_AFTER,
    ) -> None:
        super().__init__(db, recorder, readers, rollups=rollups)
        self.redis = redis_client(url)
        self.url = url
        self.prefix = prefix
        self.state = state or DependencyState("redis")
        self.settle_after = settle_after
        self._load_script = self.redis.register_script(_LOAD)
        self._claim_script = self.redis.register_script(_CLAIM)
        self._take_back_script = self.redis.register_script(_TAKE_BACK)
        self._settle_script = self.redis.register_script(_SETTLE)
        self._count_script = self.redis.register_script(_COUNT)
        self._add_script = self.redis.register_script(_ADD)
        self._unlock_script = self.redis.register_script(RELEASE_LOCK)
        # a decision's history read and claim, with the other requests' of this loop turn
        self._batch = ScriptBatch(self.redis)
        self._live: dict[str, LivePlan] = {}  # retention per environment, as last seen
        self._counters: dict[str, str] = {}  # environment -> ready, rebuilding, missing
        self._rebuilds: dict[str, asyncio.Task[None]] = {}
        self._stop_rebuilds = threading.Event()  # set by close(): rebuilds run in threads
        # entries recorded while Redis was down: (environment, audience, profile, score,
        # member, presented), added when it answers again
        self._backlog: list[tuple[str, str, str, float, str, bool]] = []
        self._overflowed: set[str] = set()  # environments whose backlog was dropped
        self._settled_at = -float("inf")
        self._confirmed: dict[str, list[str]] = {}  # notes of committed writes, to drop
        self._confirming: asyncio.Task[None] | None = None
        self.rebuilt = 0  # counters this node rebuilt
        self.taken_back = 0  # claims and events whose counts were taken back
        self.put_back = 0  # entries Redis had lost that settling put back

    def _keys(self, env: str, audience: str, profile_id: str) -> tuple[str, str, str]:
        return profile_keys(self.prefix, env, audience, profile_id)

    async def start(self) -> None:
        try:
            await self.redis.ping()
        except Exception as exc:
            if not redis_down(exc):
                raise
            self.state.failed(exc)  # the node starts and serves degraded until it answers
            log.error("Redis does not answer (%s): deciding without counted offers", exc)

    async def close(self) -> None:
        if self._confirming is not None:
            await self._confirming
        # a rebuild runs in a thread, which cancelling its task would not stop: it is told
        # to stop (between two profiles, its lock released) and waited for
        self._stop_rebuilds.set()
        for task in list(self._rebuilds.values()):
            try:
                await task
            except BaseException:  # failed and logged
                continue
        await super().close()
        if self._backlog:
            log.warning(
                "%d entries recorded while Redis was down were not added to it: run "
                "overture counters rebuild if a later deployment adds policies",
                len(self._backlog),
            )
        await self.redis.aclose()

    def counters(self) -> dict[str, str]:
        return dict(self._counters)

    # -- reads ---------------------------------------------------------------------------
    def _usable(self) -> None:
        """CountsUnavailable at once while Redis is known down (one attempt a second)."""
        state = self.state
        if not state.up and not state.may_try():
            raise CountsUnavailable(COUNTS_DOWN)

    def _failed(self, exc: Exception) -> CountsUnavailable:
        if not redis_down(exc):
            raise exc
        self.state.failed(exc)
        return CountsUnavailable(COUNTS_DOWN)

    def _missing(self, live: LivePlan | None, environment: str) -> CountsUnavailable:
        """The environment's counters are gone: rebuild them (one node does)."""
        if environment not in self._rebuilds:
            self._counters[environment] = "missing"
            if live is not None:
                self._start_rebuild(live)
        return CountsUnavailable(COUNTS_MISSING)

    async def load(
        self, live: LivePlan, audience: str, profile_id: str, now: dt.datetime | None = None
    ) -> ProfileHistory:
        self._live[live.environment] = live
        lookback = live.lookback
        now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        # The bounds as the scores are made (score(at)), so that an entry exactly at a
        # window's start is in it, as SQL's `at >= since` has it.
        presented_since = lookback.presented_since(now)
        p_from: float | str = score(presented_since) if presented_since is not None else "+inf"
        responses_since = lookback.responses_since(now)
        r_from: float | str = "-inf"
        if responses_since is not None:
            r_from = score(responses_since)
        elif not lookback.counts_responses:
            r_from = "+inf"
        self._usable()
        keys = [
            *self._keys(live.environment, audience, profile_id),
            counters_key(self.prefix, live.environment),
        ]
        try:
            found = await self._batch.call(self._load_script, keys, [p_from, r_from])
        except Exception as exc:
            raise self._failed(exc) from exc
        self.state.answered()
        if found[0] == -1:
            raise self._missing(live, live.environment)
        version, presented, responses = found
        entries = [
            _entry(items[i], items[i + 1])
            for items in (presented, responses)
            for i in range(0, len(items), 2)
        ]
        return ProfileHistory.of(int(version), entries)

    def _reads_since(self) -> bool:
        return False  # the history is Redis's: read whole when it moved

    async def version(self, environment: str, audience: str, profile_id: str) -> int:
        self._usable()
        try:
            found = await self.redis.get(self._keys(environment, audience, profile_id)[0])
        except Exception as exc:
            raise self._failed(exc) from exc
        self.state.answered()
        return int(found) if found is not None else 0

    # -- claims --------------------------------------------------------------------------
    async def claim(self, claim: Claim) -> ClaimResult:
        if not claim.entries and not claim.inventory:
            await self._record(claim)  # nothing Redis counts (anonymous, no policies)
            return ClaimResult(True)
        if claim.unchecked:
            return await self._claim_unchecked(claim)
        self._usable()
        env = claim.environment
        window, keep = _retention(self._live.get(env))
        version_key, presented_key, _r = self._keys(env, claim.audience, claim.profile_id or "")
        inv_keys = [
            inventory_key(self.prefix, env, i.offer_code, i.period) for i in claim.inventory
        ]
        compare = claim.expected is not None and claim.profile_id is not None
        now = time.time()
        pairs = self._pairs(claim)
        note = _claim_note(claim, version_key, presented_key if compare else "", pairs, inv_keys)
        args: list[Any] = [
            claim.expected if compare else "",
            len(claim.inventory),
            *(i.limit for i in claim.inventory),
            *(inventory_ttl(i.period) for i in claim.inventory),
            now,
            window,
            keep,
            note,
        ]
        if compare:
            args += pairs
        keys = [version_key, presented_key, counters_key(self.prefix, env), self._notes(env)]
        try:
            result = cast(
                list[int], await self._batch.call(self._claim_script, [*keys, *inv_keys], args)
            )
        except Exception as exc:
            # (a script that ran before the connection failed leaves its note: settled later)
            raise self._failed(exc) from exc
        self.state.answered()
        if result[0] == -4:  # it ran, and this is redis-py's retry of it: it holds
            result = result[1:]
        elif result[0] == -3:
            raise self._missing(self._live.get(env), env)
        if result[0] == -1:
            return ClaimResult(False, conflict=True)
        if result[0] == -2:
            inv = claim.inventory[result[1] - 1]
            return ClaimResult(False, exhausted=[(inv.offer_code, inv.period, int(result[2]))])
        await self._write(claim, presented_key, note, pairs, inv_keys)
        return ClaimResult(True, version=int(result[0]) if compare else None)

    async def _claim_unchecked(self, claim: Claim) -> ClaimResult:
        """A degraded decision's claim (it proposes nothing a policy counts): its entries
        added to Redis without a comparison, or, Redis down, kept for when it answers."""
        env = claim.environment
        assert not claim.inventory, "a degraded decision draws on no inventory"
        version_key, presented_key, _r = self._keys(env, claim.audience, claim.profile_id or "")
        pairs = self._pairs(claim)
        if self.state.up or self.state.may_try():
            window, keep = _retention(self._live.get(env))
            note = _claim_note(claim, version_key, presented_key, pairs, [])
            args: list[Any] = ["u", 0, time.time(), window, keep, note, *pairs]
            keys = [version_key, presented_key, counters_key(self.prefix, env), self._notes(env)]
            try:
                await self._claim_script(keys=keys, args=args)
            except Exception as exc:
                self._failed(exc)
            else:
                self.state.answered()
                await self._write(claim, presented_key, note, pairs, [])
                return ClaimResult(True)
        await self._record(claim)
        self._hold(env, claim.audience, claim.profile_id or "", pairs, presented=True)
        return ClaimResult(True)

    def _pairs(self, claim: Claim) -> list[Any]:
        pairs: list[Any] = []
        for row, entry in zip(claim.propositions, claim.entries, strict=False):
            pairs += [score(entry.at), member(row["tracking_code"], entry)]
        return pairs

    def _notes(self, env: str) -> str:
        return notes_key(self.prefix, env)

    async def _record(self, claim: Claim) -> None:
        await self.recorder.submit(
            _record_propositions if self.rollups else _record_propositions_only,
            claim.propositions,
        )

    async def _write(
        self, claim: Claim, set_key: str, note: str, pairs: list[Any], inv_keys: list[str]
    ) -> None:
        """Record a claim counted in Redis; take its counts back if that certainly failed
        (an unknown outcome leaves its note, settled later against the history)."""
        try:
            await self._record(claim)
        except Exception as exc:
            if rolled_back(exc):  # not recorded, so not counted: take the counts back
                env = claim.environment
                await self._take_back(set_key, env, note, pairs[1::2], inv_keys)
            raise
        self._confirm(claim.environment, note)

    def _confirm(self, env: str, note: str) -> None:
        """A note whose write is committed: dropped, with the others of this turn of the
        loop, in one round trip off the request's path (lost, it is settled later)."""
        if not note:
            return
        self._confirmed.setdefault(env, []).append(note)
        if self._confirming is None:
            self._confirming = asyncio.get_running_loop().create_task(self._drop_confirmed())

    async def _drop_confirmed(self) -> None:
        try:
            while self._confirmed:
                confirmed, self._confirmed = self._confirmed, {}
                try:
                    async with self.redis.pipeline(transaction=False) as pipe:
                        for env, notes in confirmed.items():
                            await pipe.zrem(self._notes(env), *notes)
                        await pipe.execute()
                except Exception as exc:  # the notes stay: settled against the history
                    if not redis_down(exc):
                        log.exception("could not drop the notes of committed writes")
        finally:
            self._confirming = None

    async def _take_back(
        self, set_key: str, env: str, note: str, members: list[Any], inv_keys: list[str]
    ) -> None:
        """Undo what a note says was added. A profile's version stays raised: a node that
        read meanwhile reads again, which is harmless."""
        if not note:
            return
        try:
            done = await self._take_back_script(
                keys=[set_key, self._notes(env), *inv_keys], args=[note, *members]
            )
        except Exception as exc:  # the note stays: settled later
            log.error("could not take back the counts of a write that failed: %s", reason(exc))
        else:
            self.taken_back += int(done)

    # -- events --------------------------------------------------------------------------
    async def record_events(self, environment: str, events: list[EventRecord]) -> list[bool]:
        counted = [e for e in events if e.entry is not None and e.row["profile_id"] is not None]
        if not counted:
            return await super().record_events(environment, events)
        if not self.state.up and not self.state.may_try():
            raise RedisDown(EVENTS_REFUSED)
        window, keep = _retention(self._live.get(environment))
        now = time.time()
        notes = self._notes(environment)
        calls: list[tuple[int, str, str, str]] = []  # (event's index, set, note, member)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for i, record in enumerate(events):
                    row, entry = record.row, record.entry
                    if entry is None or row["profile_id"] is None:
                        continue
                    version_key, presented_key, responses_key = self._keys(
                        environment, row["audience"], row["profile_id"]
                    )
                    presented = entry.event == "presented"
                    set_key = presented_key if presented else responses_key
                    at, added_member = score(entry.at), member(row["event_id"], entry)
                    note = _event_note(row["event_id"], version_key, set_key, at, added_member)
                    await self._count_script(
                        keys=[version_key, set_key, notes],
                        args=[at, added_member, window if presented else keep, keep, now, note],
                        client=pipe,
                    )
                    calls.append((i, set_key, note, added_member))
                results = await pipe.execute()
        except Exception as exc:
            # (scripts that ran before the failure left their notes: settled later)
            if not redis_down(exc):
                raise
            self.state.failed(exc)
            raise RedisDown(EVENTS_REFUSED) from exc
        self.state.answered()
        added = [call for call, new in zip(calls, results, strict=True) if int(new) == 1]
        try:
            stored = await super().record_events(environment, events)
        except Exception as exc:
            if rolled_back(exc):
                for _i, set_key, note, added_member in added:
                    await self._take_back(set_key, environment, note, [added_member], [])
            raise
        for i, _set_key, note, _member in added:
            if stored[i]:  # (a duplicate's note is settled: is it the stored entry?)
                self._confirm(environment, note)
        return stored

    # -- keeping Redis in step with the history -----------------------------------------
    async def upkeep(self, lives: Sequence[LivePlan], *, starting: bool = False) -> None:
        """See Ledger.upkeep and the module's doc: check each environment's counters key
        (rebuild what is missing), add what was held while Redis was down, settle notes."""
        for live in lives:
            self._live[live.environment] = live
        try:
            present = (
                await self.redis.mget(
                    [counters_key(self.prefix, live.environment) for live in lives]
                )
                if lives
                else []
            )
            if self._backlog or self._overflowed:
                await self._replay()
        except Exception as exc:
            if not redis_down(exc):
                raise
            self.state.failed(exc)
            return
        self.state.answered()
        for live, found in zip(lives, present, strict=True):
            env = live.environment
            if found is not None and env not in self._rebuilds:
                self._counters[env] = "ready"
            elif env not in self._rebuilds:
                self._counters[env] = "missing"
                self._start_rebuild(live)
        if starting and self._rebuilds:
            await asyncio.wait(list(self._rebuilds.values()), timeout=START_WAIT)
        elif time.monotonic() - self._settled_at >= _SETTLE_EVERY and self.recorder.state.up:
            self._settled_at = time.monotonic()
            for live in lives:
                try:
                    await self.settle(live.environment)
                except Exception as exc:  # tried again at the next round
                    if redis_down(exc):
                        self.state.failed(exc)
                    elif database_down(exc):
                        self.recorder.state.failed(exc)
                    else:
                        raise
                    return

    def _start_rebuild(self, live: LivePlan) -> None:
        env = live.environment
        if env in self._rebuilds:
            return
        self._counters[env] = "rebuilding"
        task = asyncio.get_running_loop().create_task(
            self._rebuild(live), name=f"overture-rebuild-{env}"
        )
        self._rebuilds[env] = task

    async def _rebuild(self, live: LivePlan) -> None:
        from overture.history.rebuild import RebuildStopped, rebuild_counters

        env = live.environment
        try:
            summary = await asyncio.to_thread(
                rebuild_counters,
                self.db,
                env,
                redis_url=self.url,
                redis_prefix=self.prefix,
                live=live,
                only_if_missing=True,
                stop=self._stop_rebuilds,
            )
        except RebuildStopped:
            self._counters[env] = "missing"
        except Exception as exc:
            self._counters[env] = "missing"
            if redis_down(exc):
                self.state.failed(exc)
            elif database_down(exc):
                self.recorder.state.failed(exc)
            else:
                log.exception("environment %s: could not rebuild the counters", env)
            log.error("environment %s: counters not rebuilt (%s); retrying", env, reason(exc))
        else:
            self._counters[env] = "ready"
            if not summary.skipped:
                self.rebuilt += 1
                log.warning(
                    "environment %s: Redis held no counters (emptied, or never built): built "
                    "from the history in %.1f s (%d profiles, %d inventory counters)",
                    env,
                    summary.seconds,
                    summary.profiles,
                    summary.inventory_keys,
                )
        finally:
            del self._rebuilds[env]

    def _hold(
        self, env: str, audience: str, profile_id: str, pairs: list[Any], *, presented: bool
    ) -> None:
        """Keep entries recorded while Redis was down, to add when it answers."""
        if env in self._overflowed:
            return
        if len(self._backlog) + len(pairs) // 2 > MAX_BACKLOG:
            self._overflowed.add(env)
            self._backlog = [b for b in self._backlog if b[0] != env]
            return
        for i in range(0, len(pairs), 2):
            self._backlog.append((env, audience, profile_id, pairs[i], pairs[i + 1], presented))

    async def _replay(self) -> None:
        """Add what was held while Redis was down; an environment whose backlog overflowed
        has its counters key deleted instead, so that its counters are rebuilt."""
        backlog, self._backlog = self._backlog, []
        overflowed, self._overflowed = self._overflowed, set()
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for env in overflowed:
                    await pipe.delete(counters_key(self.prefix, env))
                for env, audience, profile_id, at, added, presented in backlog:
                    window, keep = _retention(self._live.get(env))
                    version_key, presented_key, responses_key = self._keys(
                        env, audience, profile_id
                    )
                    await self._add_script(
                        keys=[version_key, presented_key if presented else responses_key],
                        args=[at, added, window if presented else keep, keep],
                        client=pipe,
                    )
                await pipe.execute()
        except BaseException:
            self._backlog = backlog + self._backlog
            self._overflowed |= overflowed
            raise
        if backlog:
            log.info("added %d entries recorded while Redis was down", len(backlog))

    async def settle(self, environment: str, *, older_than: float | None = None) -> int:
        """Settle the environment's notes older than `older_than` seconds (default:
        settle_after) against the history, one node at a time; how many were settled."""
        age = self.settle_after if older_than is None else older_than
        notes = self._notes(environment)
        lock = notes + ":lock"
        token = secrets.token_hex(8)
        if not await self.redis.set(lock, token, nx=True, px=30_000):
            return 0  # another node is at it
        settled = 0
        try:
            for _ in range(_SETTLE_ROUNDS):
                found = cast(
                    list[bytes],
                    await self.redis.zrangebyscore(
                        notes, "-inf", time.time() - age, start=0, num=_SETTLE_BATCH
                    ),
                )
                if not found:
                    break
                await self._settle(environment, notes, found)
                settled += len(found)
                if len(found) < _SETTLE_BATCH:
                    break
        finally:
            await self._unlock_script(keys=[lock], args=[token])
        return settled

    async def _settle(self, env: str, notes: str, found: list[bytes]) -> None:
        parsed: list[tuple[bytes, dict[str, Any]]] = []
        for raw in found:
            try:
                parsed.append((raw, json.loads(raw)))
            except ValueError:
                await self.redis.zrem(notes, raw)  # not a note of ours
        codes = [c for _raw, n in parsed if n.get("k") == "c" for c in n["t"]]
        event_ids = [n["e"] for _raw, n in parsed if n.get("k") == "e"]
        recorded = await self._recorded(codes)
        stored = await self._stored_events(env, event_ids)
        written = [
            any(code in recorded for code in n["t"])
            if n.get("k") == "c"
            else stored.get(n["e"]) == n.get("m", [None, None])[1]
            for _raw, n in parsed
        ]
        async with self.redis.pipeline(transaction=False) as pipe:
            for (raw, n), kept in zip(parsed, written, strict=True):
                pairs: list[Any] = n.get("m", [])
                if kept:
                    await self._settle_script(
                        keys=[n.get("v") or notes, n.get("s") or notes, notes],
                        args=[raw, *pairs],
                        client=pipe,
                    )
                else:
                    await self._take_back_script(
                        keys=[n.get("s") or notes, notes, *n.get("i", [])],
                        args=[raw, *pairs[1::2]],
                        client=pipe,
                    )
            results = await pipe.execute()
        for kept, done in zip(written, results, strict=True):
            if kept:
                self.put_back += int(done)
            else:
                self.taken_back += int(done)

    async def _recorded(self, codes: list[str]) -> set[str]:
        """Which of these tracking codes the history holds."""
        found: set[str] = set()
        for start in range(0, len(codes), 500):
            chunk = tuple(codes[start : start + 500])
            sql = (
                "SELECT tracking_code FROM propositions "
                f"WHERE tracking_code IN ({', '.join('?' * len(chunk))})"
            )
            found.update(row[0] for row in await self.raw.rows(sql, chunk))
        return found

    async def _stored_events(self, env: str, event_ids: list[str]) -> dict[str, str]:
        """The stored events among these ids, each as the member it is counted as."""
        found: dict[str, str] = {}
        for start in range(0, len(event_ids), 500):
            chunk = tuple(event_ids[start : start + 500])
            sql = (
                "SELECT event_id, kind, offer_code, channel, categories, at FROM events "
                f"WHERE environment = ? AND event_id IN ({', '.join('?' * len(chunk))})"
            )
            for event_id, kind, offer, channel, categories, at in await self.raw.rows(
                sql, (env, *chunk)
            ):
                entry = Entry(
                    kind, offer or "", split_categories(categories), channel or "", as_time(at)
                )
                found[event_id] = member(event_id, entry)
        return found


def redis_client(url: str) -> Any:
    """The Redis client of the ledger and of the sessions. Time-outs, so that a Redis that
    stops answering fails a request (a 503) instead of holding it; one retry, on a broken
    connection only (one found broken after Redis restarted), not on a time-out, and not
    the client's default of ten with back-off. A connection may also break after a script
    ran and before its answer came (redis-py then sends the call, or the whole pipeline,
    again): a claim finds its own note and adds nothing twice (_CLAIM), a read or an
    event's count (members unique by event id) is the same done twice."""
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as BrokenConnection

    retry = Retry(NoBackoff(), 1, supported_errors=(BrokenConnection,))
    client = aioredis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, retry=retry)
    pool = client.connection_pool  # (its class is the URL's: TCP, TLS or a Unix socket)
    pool.connection_class = _packed_in_c(pool.connection_class)
    return client


def _packed_in_c(base: type[Any]) -> type[Any]:
    """`base` (a redis-py asyncio connection class) writing commands with hiredis's
    packer, in C. redis-py's asyncio connections pack every argument in Python (its
    blocking ones use hiredis): 12 µs for a claim's script call against 3 (measured), and
    a decision makes one or two. Without hiredis's packer, `base` as it is. (Arguments
    are text in UTF-8, the client's default and the only encoding the runtime uses.)"""
    try:
        import hiredis
    except ImportError:  # pragma: no cover - redis[hiredis] is a dependency
        return base
    if not hasattr(hiredis, "pack_command"):  # pragma: no cover - hiredis before 2.1
        return base

    class PackedInC(base):  # type: ignore[misc]
        def pack_command(self, *args: Any) -> list[bytes]:
            first = args[0]  # a command of several words ("SCRIPT LOAD"): one argument each
            if isinstance(first, str):
                args = (*first.encode().split(), *args[1:])
            elif b" " in first:
                args = (*first.split(), *args[1:])
            given = tuple(bytes(a) if isinstance(a, bytearray | memoryview) else a for a in args)
            packed: bytes = hiredis.pack_command(given)  # type: ignore[arg-type]
            return [packed]

    PackedInC.__name__ = f"PackedInC{base.__name__}"
    return PackedInC


_encode = msgspec.json.Encoder().encode  # a note as compact JSON (a tenth of json.dumps)


def _claim_note(
    claim: Claim, version_key: str, set_key: str, pairs: list[Any], inv_keys: list[str]
) -> str:
    """What a claim adds to Redis, to settle it against the history later ('' when it adds
    nothing to settle)."""
    if not pairs and not inv_keys:
        return ""
    profiled = bool(pairs and set_key)  # an anonymous claim has no profile's set to settle
    note = {
        "k": "c",
        "t": [row["tracking_code"] for row in claim.propositions],
        "v": version_key if profiled else "",
        "s": set_key if profiled else "",
        "m": pairs if profiled else [],
        "i": inv_keys,
    }
    return _encode(note).decode()


def _event_note(event_id: str, version_key: str, set_key: str, at: float, added: str) -> str:
    note = {"k": "e", "e": event_id, "v": version_key, "s": set_key, "m": [at, added]}
    return _encode(note).decode()


async def _record_propositions(tx: Tx, batches: list[list[dict[str, Any]]]) -> list[None]:
    await insert_propositions(tx, batches)
    return [None] * len(batches)


async def _record_propositions_only(tx: Tx, batches: list[list[dict[str, Any]]]) -> list[None]:
    await insert_propositions(tx, batches, rollup=False)
    return [None] * len(batches)


def _retention(live: LivePlan | None) -> tuple[int, int]:
    """What the sets keep (Lookback.retention); all of it before the first load."""
    return (live.lookback if live is not None else Lookback()).retention()


def score(at: dt.datetime) -> float:
    """An entry's score in a sorted set: its time (naive UTC) in seconds since the epoch."""
    return at.replace(tzinfo=dt.UTC).timestamp()


def member(unique: str, entry: Entry) -> str:
    """An entry as a set's member: unique by its tracking code or event id."""
    return "|".join(
        (unique, entry.event, entry.offer_code, entry.channel, join_categories(entry.categories))
    )


def _entry(item: bytes, at_score: bytes) -> Entry:
    _unique, event, offer, channel, categories = item.decode().split("|", 4)
    at = dt.datetime.fromtimestamp(float(at_score), dt.UTC).replace(tzinfo=None)
    return Entry(event, offer, split_categories(categories), channel, at)
