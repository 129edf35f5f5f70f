"""The ledger in Redis (`--redis URL`): counts and claims in Redis, history in the database.

Per profile, two sorted sets scored by time hold what policies count: `…:p:` the
propositions and untracked presentations (trimmed to the longest capping window), `…:r:`
the acceptances and rejections (trimmed to the longest suppression period, or kept when a
policy suppresses for ever); a `…:v:` counter is the profile's version. Inventory
counters are plain integers per offer and period. A claim is one Lua script, which Redis
runs atomically: compare the version, check every inventory, then add and increment, or
change nothing. So every node sharing the Redis sees one exact count.

The history is still written to the database (the record, and what `overture counters
rebuild` reloads Redis from): propositions after their claim succeeded, events before
they are counted. When the database refuses a claim's propositions, the claim's counts are
taken back and the caller told; when the write's fate is unknown (a connection lost during
the commit, a process killed between the two), they stay: Redis may count more than the
history holds (caps err on the safe side) until the next rebuild, never less.
"""

from __future__ import annotations

import datetime as dt
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from overture.history.deployed import LivePlan
from overture.history.ledger import Claim, ClaimResult, Entry, EventRecord, ProfileHistory
from overture.history.recorder import Recorder, rolled_back
from overture.history.sql_ledger import SqlLedger, insert_propositions
from overture.history.tables import join_categories, split_categories
from overture.history.windows import Lookback, inventory_period
from overture.store import Database
from overture.store.raw import Tx

log = logging.getLogger("overture.runtime")

_LOAD = """
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
local p = redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[1], '+inf', 'WITHSCORES')
local r = redis.call('ZRANGEBYSCORE', KEYS[3], ARGV[2], '+inf', 'WITHSCORES')
return {v, p, r}
"""

# KEYS: version, presented set, inventory keys...
# ARGV: expected ('' = no comparison), n inventories, limits..., ttls..., now,
#       presented window (s, 0 = keep), retention (s, 0 = keep), then score/member pairs
_CLAIM = """
local expected = ARGV[1]
local n = tonumber(ARGV[2])
if expected ~= '' then
  local v = tonumber(redis.call('GET', KEYS[1]) or '0')
  if v ~= tonumber(expected) then return {-1, v} end
end
for i = 1, n do
  local used = tonumber(redis.call('GET', KEYS[2 + i]) or '0')
  if used >= tonumber(ARGV[2 + i]) then return {-2, i, used} end
end
for i = 1, n do
  redis.call('INCR', KEYS[2 + i])
  local ttl = tonumber(ARGV[2 + n + i])
  if ttl > 0 then redis.call('EXPIRE', KEYS[2 + i], ttl) end
end
if expected == '' then return {0} end
local now = tonumber(ARGV[3 + 2 * n])
local window = tonumber(ARGV[4 + 2 * n])
local keep = tonumber(ARGV[5 + 2 * n])
for j = 6 + 2 * n, #ARGV, 2 do
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

# A claim whose propositions the database refused: undo its counts.
# KEYS: presented set, inventory keys...; ARGV: the members the claim added
_UNCLAIM = """
if #ARGV > 0 then redis.call('ZREM', KEYS[1], unpack(ARGV)) end
for i = 2, #KEYS do redis.call('DECR', KEYS[i]) end
return 0
"""

# KEYS: version, set; ARGV: score, member, ttl of the set (0 = keep), retention
_COUNT = """
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
local v = redis.call('INCR', KEYS[1])
if tonumber(ARGV[4]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[4]) end
return v
"""

_DAY_TTL = 2 * 86400  # a day's inventory counter outlives its day


def profile_keys(prefix: str, env: str, audience: str, profile_id: str) -> tuple[str, str, str]:
    """A profile's keys: its version, its presented set, its responses set."""
    base = f"{prefix}:{env}:{audience}:{profile_id}"
    return f"{base}:v", f"{base}:p", f"{base}:r"


def inventory_key(prefix: str, env: str, offer_code: str, period: str) -> str:
    return f"{prefix}:{env}:inventory:{offer_code}:{period}"


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
    ) -> None:
        import redis.asyncio as aioredis

        super().__init__(db, recorder, readers)
        self.redis = aioredis.Redis.from_url(url)
        self.prefix = prefix
        self._load_script = self.redis.register_script(_LOAD)
        self._claim_script = self.redis.register_script(_CLAIM)
        self._unclaim_script = self.redis.register_script(_UNCLAIM)
        self._count_script = self.redis.register_script(_COUNT)
        self._live: dict[str, LivePlan] = {}  # retention per environment, as last seen

    def _keys(self, env: str, audience: str, profile_id: str) -> tuple[str, str, str]:
        return profile_keys(self.prefix, env, audience, profile_id)

    async def start(self) -> None:
        await self.redis.ping()

    async def close(self) -> None:
        await super().close()
        await self.redis.aclose()

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
        version, presented, responses = await self._load_script(
            keys=list(self._keys(live.environment, audience, profile_id)), args=[p_from, r_from]
        )
        entries = [
            _entry(items[i], items[i + 1])
            for items in (presented, responses)
            for i in range(0, len(items), 2)
        ]
        return ProfileHistory.of(int(version), entries)

    async def claim(self, claim: Claim) -> ClaimResult:
        window, keep = _retention(self._live.get(claim.environment))
        version_key, presented_key, _r = self._keys(
            claim.environment, claim.audience, claim.profile_id or ""
        )
        inv_keys = [
            inventory_key(self.prefix, claim.environment, i.offer_code, i.period)
            for i in claim.inventory
        ]
        args: list[Any] = [
            "" if claim.expected is None or claim.profile_id is None else claim.expected,
            len(claim.inventory),
            *(i.limit for i in claim.inventory),
            *(inventory_ttl(i.period) for i in claim.inventory),
            dt.datetime.now(dt.UTC).timestamp(),
            window,
            keep,
        ]
        members = [
            member(row["tracking_code"], entry)
            for row, entry in zip(claim.propositions, claim.entries, strict=False)
        ]
        for entry, added in zip(claim.entries, members, strict=False):
            args += [score(entry.at), added]
        result = cast(
            list[int],
            await self._claim_script(keys=[version_key, presented_key, *inv_keys], args=args),
        )
        if result[0] == -1:
            return ClaimResult(False, conflict=True)
        if result[0] == -2:
            inv = claim.inventory[result[1] - 1]
            return ClaimResult(False, exhausted=[(inv.offer_code, inv.period, int(result[2]))])
        try:
            await self.recorder.submit(_record_propositions, claim.propositions)
        except Exception as exc:
            if rolled_back(exc):  # not recorded, so not counted: take the counts back
                await self._take_back(presented_key, inv_keys, members)
            raise  # (anything else may have been written: it stays counted, the safe side)
        return ClaimResult(True, version=int(result[0]) if claim.expected is not None else None)

    async def _take_back(self, presented_key: str, inv_keys: list[str], members: list[str]) -> None:
        """Undo a claim's counts (its presentations, its inventory). The version stays
        raised: a node that read meanwhile reads again, which is harmless."""
        try:
            await self._unclaim_script(keys=[presented_key, *inv_keys], args=members)
        except Exception:  # the caller is told of the write's failure, not of this one
            log.exception("could not take back the counts of a claim the database refused")

    async def record_events(self, environment: str, events: list[EventRecord]) -> list[bool]:
        stored = await super().record_events(environment, events)
        window, keep = _retention(self._live.get(environment))
        for record, new in zip(events, stored, strict=True):
            row, entry = record.row, record.entry
            if not new or entry is None or row["profile_id"] is None:
                continue
            version_key, presented_key, responses_key = self._keys(
                environment, row["audience"], row["profile_id"]
            )
            presented = entry.event == "presented"
            await self._count_script(
                keys=[version_key, presented_key if presented else responses_key],
                args=[
                    score(entry.at),
                    member(row["event_id"], entry),
                    window if presented else keep,
                    keep,
                ],
            )
        return stored


async def _record_propositions(tx: Tx, batches: list[list[dict[str, Any]]]) -> list[None]:
    await insert_propositions(tx, batches)
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
