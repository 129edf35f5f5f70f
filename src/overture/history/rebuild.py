"""Counters rebuilt from the history (`overture counters rebuild --env E`).

The history (propositions and events) is the record; the counters are derived from it
(DESIGN.md §6), so they can be recomputed when they are lost or wrong:

- `inventory_counters` (database): for each inventory policy of the environment's current
  deployment, the propositions of its offer in the placements it covers, per UTC day for
  daily limits and in total for lifetime ones. The environment's rows are replaced.
- With Redis (`RedisLedger`): every profile's presented set and responses set, loaded with
  its counted history (counted.every_profile: the same definition the ledgers read), each
  profile's version, and the inventory keys (a day's key expires two days after its last
  proposition, as the nodes' increments make it).

Profile versions in the database are compare-and-set numbers, not counts: nothing to
rebuild there (the database ledger reads its counts from the history itself).

With Redis, the environment's counters key is written at the end (nodes claim nothing
while it is missing: redis_ledger.py), and the rebuild holds the environment's rebuild lock,
so that two rebuilds (nodes that found the counters gone, the command) do not run at once;
a node passes `only_if_missing` and rebuilds nothing if another one finished meanwhile.

Exact when the nodes are stopped, or when Redis lost the counters (nodes then claim nothing
until it is done). While nodes serve with counters in place, nothing they record is lost:

- database: counting and writing hold the counter table (PostgreSQL `LOCK TABLE`; SQLite's
  write lock), so a claim is either in the count or waits for the rebuild to commit;
- Redis: a profile's sets are replaced in one script, which keeps what was scored from
  KEEP_RECENT before the rebuild began (claims whose propositions may not have reached the
  database yet) and raises the version to at least the rebuild's start in milliseconds,
  above any version a node may have cached even if Redis started again from nothing, so
  every node's cached history conflicts at its next claim and is read again; an inventory
  key gets the history's count plus what nodes added after the rebuild first read it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, delete, func, insert, select, text

from overture.engine.history import inventory_since
from overture.history.counted import every_profile
from overture.history.deployed import LivePlan, load_live
from overture.history.ledger import Entry
from overture.history.redis_ledger import (
    RELEASE_LOCK,
    counters_key,
    counters_lock_key,
    inventory_key,
    inventory_ttl,
    member,
    profile_keys,
    score,
)
from overture.history.tables import INV, P, split_categories
from overture.history.windows import inventory_period
from overture.store import Database

if TYPE_CHECKING:
    import redis

# Redis members scored this long before a rebuild began are kept: the nodes write to
# Redis first and to the database a moment later.
KEEP_RECENT = dt.timedelta(seconds=60)
LOCK_SECONDS = 30  # the rebuild lock's lease, renewed while the rebuild runs
LOCK_WAIT = 600.0  # seconds to wait for another rebuild of the environment to finish

# KEYS: a lock; ARGV: its holder's token, lease (ms): renewed only by its holder
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

# KEYS: version, presented set, responses set
# ARGV: keep from (score), least new version, ttl of the presented set, of the responses
#       set, of the version (s, 0 = keep), number of presented pairs, then score/member
#       pairs: the presented ones, then the responses
_REPLACE = """
local from = '(' .. ARGV[1]
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', from)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', from)
local split = 7 + 2 * tonumber(ARGV[6])
local function add(key, first, last)
  for i = first, last, 1000 do
    redis.call('ZADD', key, unpack(ARGV, i, math.min(i + 999, last)))
  end
end
add(KEYS[2], 7, split - 1)
add(KEYS[3], split, #ARGV)
local function expire(key, ttl)
  if tonumber(ttl) > 0 then redis.call('EXPIRE', key, ttl) else redis.call('PERSIST', key) end
end
expire(KEYS[2], ARGV[3])
expire(KEYS[3], ARGV[4])
local least = tonumber(ARGV[2])
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v == nil then
  redis.call('SET', KEYS[1], ARGV[2])
  v = least
else
  local step = 1
  if v + 1 < least then step = least - v end
  v = redis.call('INCRBY', KEYS[1], string.format('%d', step))
end
expire(KEYS[1], ARGV[5])
return v
"""

# KEYS: an inventory key; ARGV: the history's count, the key's value when the rebuild
# read it, when it expires (epoch s, 0 = never)
_SET_INVENTORY = """
local now = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local v = tonumber(ARGV[1]) + math.max(0, now - tonumber(ARGV[2]))
if v <= 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('SET', KEYS[1], string.format('%d', v))
if tonumber(ARGV[3]) > 0 then redis.call('EXPIREAT', KEYS[1], ARGV[3]) end
return v
"""


@dataclass
class RebuildSummary:
    environment: str
    deployment: int
    inventory_counters: int = 0  # rows written to inventory_counters
    inventory: dict[tuple[str, str], int] = field(default_factory=dict)  # (offer, period)
    redis: bool = False
    inventory_keys: int = 0  # inventory keys set in Redis
    profiles: int = 0  # profiles whose counted history was rebuilt in Redis
    entries: int = 0  # history entries loaded into Redis
    cleared: int = 0  # profiles Redis held that have nothing to count any more
    seconds: float = 0.0
    skipped: bool = False  # only_if_missing, and another rebuild had just written them


def rebuild_counters(
    db: Database,
    environment: str,
    *,
    redis_url: str | None = None,
    redis_prefix: str = "overture",
    batch: int = 500,
    now: dt.datetime | None = None,
    live: LivePlan | None = None,
    only_if_missing: bool = False,
    stop: threading.Event | None = None,
) -> RebuildSummary:
    """Recompute `environment`'s counters from its history (see the module's docstring).
    `now` (naive UTC) is when windows end; `batch` profiles go to Redis per round trip;
    `live` is the deployment whose policies count (default: the environment's current);
    `only_if_missing`: with Redis, rebuild only if its counters key is missing once the
    rebuild lock is held (a node's rebuild; another may have done it meanwhile); `stop`:
    set, the rebuild stops between two profiles with RebuildStopped, releasing its lock and
    leaving the counters key unwritten (a node that closes sets it: its rebuild runs in a
    thread, which would otherwise go on writing after the node stopped)."""
    started = time.perf_counter()
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    live = live or load_live(db, environment)
    summary = RebuildSummary(environment, live.deployment, redis=redis_url is not None)
    if redis_url is None:
        _rebuild_table(db, live, summary)
    else:
        import redis

        client = redis.Redis.from_url(redis_url, socket_timeout=30, socket_connect_timeout=5)
        try:
            client.ping()
            with _Lock(client, counters_lock_key(redis_prefix, environment), stop):
                sentinel = counters_key(redis_prefix, environment)
                if only_if_missing and client.exists(sentinel):
                    summary.skipped = True
                else:
                    rebuild = _RedisRebuild(client, redis_prefix, live, now, batch, stop=stop)
                    rebuild.check_stop()
                    before = rebuild.inventory_now()
                    last = _rebuild_table(db, live, summary)
                    summary.inventory_keys = rebuild.set_inventory(summary.inventory, last, before)
                    rebuild.profiles(db, summary)
                    built = {"deployment": live.deployment, "at": time.time()}
                    client.set(sentinel, json.dumps(built))
        finally:
            client.close()
    summary.seconds = time.perf_counter() - started
    return summary


class RebuildStopped(Exception):
    """A rebuild asked to stop (its node is closing): the counters key stays unwritten."""


class _Lock:
    """The environment's rebuild lock in Redis: taken (waiting up to LOCK_WAIT while another
    holds it), its lease renewed by a thread while held, released by its holder only."""

    def __init__(self, client: redis.Redis, key: str, stop: threading.Event | None = None) -> None:
        self.client = client
        self.key = key
        self.token = secrets.token_hex(8)
        # set: stop waiting for another holder (RebuildStopped)
        self.stop_waiting = stop or threading.Event()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def __enter__(self) -> _Lock:
        deadline = time.monotonic() + LOCK_WAIT
        lease = LOCK_SECONDS * 1000
        while not self.client.set(self.key, self.token, nx=True, px=lease):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"another rebuild of these counters held {self.key} for {LOCK_WAIT:.0f} s"
                )
            if self.stop_waiting.wait(0.1):  # (a pause between tries, cut short by a stop)
                raise RebuildStopped("the rebuild was stopped while another held its lock")
        renew = self.client.register_script(_RENEW)

        def renewing() -> None:
            while not self._stop.wait(LOCK_SECONDS / 3):
                try:
                    renew(keys=[self.key], args=[self.token, lease])
                except Exception:  # the next renewal, or the lease runs out
                    continue

        self._renewer = threading.Thread(target=renewing, name="overture-rebuild-lock")
        self._renewer.daemon = True
        self._renewer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        try:
            self.client.register_script(RELEASE_LOCK)(keys=[self.key], args=[self.token])
        except Exception:  # the lease runs out on its own
            return


# -- inventory ---------------------------------------------------------------------------
def _rebuild_table(
    db: Database, live: LivePlan, summary: RebuildSummary
) -> dict[tuple[str, str], dt.datetime]:
    """Replace the environment's inventory_counters; returns each counter's last
    proposition (for the Redis keys' expiry)."""
    env = live.environment
    with db.engine.begin() as conn:
        # Hold the counters from the count to the commit, so that a node's claim is either
        # in the count or waits: on SQLite the DELETE takes the write lock.
        if not db.is_sqlite:
            conn.execute(text(f"LOCK TABLE {INV.name} IN EXCLUSIVE MODE"))
        conn.execute(delete(INV).where(INV.c.environment == env))
        counts, last = _count_inventory(conn, live)
        if counts:
            conn.execute(
                insert(INV),
                [
                    {"environment": env, "offer_code": offer, "period": period, "used": used}
                    for (offer, period), used in sorted(counts.items())
                ],
            )
    summary.inventory = counts
    summary.inventory_counters = len(counts)
    return last


def _count_inventory(
    conn: Connection, live: LivePlan
) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], dt.datetime]]:
    """(offer, period) -> propositions counted, and the last one's time. A decision's claim
    counts a proposition once per (offer, period) its placement's policies draw on."""
    periods: dict[tuple[str, str], set[str]] = {
        key: {rule.per for rule in rules} for key, rules in live.inventory.items()
    }
    offers = sorted({offer for _placement, offer in periods})
    counts: dict[tuple[str, str], int] = {}
    last: dict[tuple[str, str], dt.datetime] = {}
    if not offers:
        return counts, last
    day = func.date(P.c.decided_at)
    rows = conn.execute(
        select(P.c.offer_code, P.c.placement, day, func.count(), func.max(P.c.decided_at))
        .where(P.c.environment == live.environment, P.c.offer_code.in_(offers))
        .group_by(P.c.offer_code, P.c.placement, day)
    )
    for offer, placement, day_value, n, last_at in rows:
        for per in periods.get((placement, offer), ()):
            key = (offer, inventory_period(inventory_since(per, _midnight(day_value))))
            counts[key] = counts.get(key, 0) + n
            if key not in last or last_at > last[key]:
                last[key] = last_at
    return counts, last


def _midnight(value: Any) -> dt.datetime:
    """date() of a stored time (text from SQLite, a date from PostgreSQL), as a time."""
    day = dt.date.fromisoformat(value) if isinstance(value, str) else cast(dt.date, value)
    return dt.datetime(day.year, day.month, day.day)


# -- Redis -------------------------------------------------------------------------------
class _RedisRebuild:
    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        live: LivePlan,
        now: dt.datetime,
        batch: int,
        *,
        stop: threading.Event | None = None,
    ) -> None:
        self.stop = stop
        self.client = client
        self.prefix = prefix
        self.live = live
        self.now = now
        self.batch = max(1, batch)
        self.window, self.keep = live.lookback.retention()
        self.keep_from = score(now - KEEP_RECENT)
        self.least_version = int(time.time() * 1000)
        self._replace = client.register_script(_REPLACE)
        self._set_inventory = client.register_script(_SET_INVENTORY)
        self._base = f"{_glob(prefix)}:{_glob(live.environment)}:"

    # inventory
    def inventory_now(self) -> dict[bytes, int]:
        """The environment's inventory keys and their values, as they are now."""
        keys = list(self.client.scan_iter(match=self._base + "inventory:*", count=1000))
        values: dict[bytes, int] = {}
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            for key, value in zip(chunk, self.client.mget(chunk), strict=True):
                values[key] = _int(value)
        return values

    def set_inventory(
        self,
        counts: dict[tuple[str, str], int],
        last: dict[tuple[str, str], dt.datetime],
        before: dict[bytes, int],
    ) -> int:
        """Set the keys to the history's counts (with what nodes added since `before`);
        drop the environment's other keys. Returns how many keys hold a count."""
        now = time.time()
        wanted: dict[bytes, tuple[int, int]] = {}  # key -> (count, expires at)
        for (offer, period), used in counts.items():
            ttl = inventory_ttl(period)
            expires = int(score(last[offer, period])) + ttl if ttl else 0
            if expires and expires <= now:
                continue  # an old day's key: gone by now
            key = inventory_key(self.prefix, self.live.environment, offer, period).encode()
            wanted[key] = (used, expires)
        written = 0
        with self.client.pipeline(transaction=False) as pipe:
            for key in wanted.keys() | before.keys():
                used, expires = wanted.get(key, (0, 0))
                self._set_inventory(
                    keys=[key], args=[used, before.get(key, 0), expires], client=pipe
                )
            for value in pipe.execute():
                written += int(value) > 0
        return written

    # profiles
    def profiles(self, db: Database, summary: RebuildSummary) -> None:
        """Replace every profile's sets with its counted history, then empty the sets of
        profiles Redis holds that have nothing left to count."""
        env = self.live.environment
        rebuilt: set[bytes] = set()
        queue = _Queue(self.client, self.batch)
        with db.engine.connect() as conn:
            rows = _counted_rows(conn, self.live, self.now)
            for (audience, profile_id), group in itertools.groupby(rows, key=lambda r: r[:2]):
                self.check_stop()
                presented: list[Any] = []
                responses: list[Any] = []
                for row in group:
                    _a, _p, unique, kind, offer, categories, channel, at = row
                    entry = Entry(
                        kind, offer or "", split_categories(categories), channel or "", at
                    )
                    pairs = presented if kind == "presented" else responses
                    pairs += (score(at), member(unique, entry))
                    summary.entries += 1
                keys = profile_keys(self.prefix, env, audience, profile_id)
                rebuilt.add(keys[0].encode())
                queue.add(self._call(keys, presented, responses), len(presented) + len(responses))
                summary.profiles += 1
            queue.flush()
        for key in self.client.scan_iter(match=self._base + "*:v", count=1000):
            self.check_stop()
            if key in rebuilt:
                continue
            base = key[:-2]
            queue.add(self._call((key, base + b":p", base + b":r"), [], []), 0)
            summary.cleared += 1
        queue.flush()

    def check_stop(self) -> None:
        if self.stop is not None and self.stop.is_set():
            raise RebuildStopped("the rebuild was stopped (its node is closing)")

    def _call(
        self, keys: tuple[str | bytes, ...], presented: list[Any], responses: list[Any]
    ) -> tuple[Any, list[Any], list[Any]]:
        args = [
            self.keep_from,
            self.least_version,
            self.window,
            self.keep,
            self.keep,
            len(presented) // 2,
            *presented,
            *responses,
        ]
        return self._replace, list(keys), args


class _Queue:
    """Script calls sent to Redis in pipelines of `batch` calls (or fewer, larger ones)."""

    def __init__(self, client: redis.Redis, batch: int) -> None:
        self.client = client
        self.batch = batch
        self.pipe = client.pipeline(transaction=False)
        self.calls = 0
        self.size = 0

    def add(self, call: tuple[Any, list[Any], list[Any]], size: int) -> None:
        script, keys, args = call
        script(keys=keys, args=args, client=self.pipe)
        self.calls += 1
        self.size += size
        if self.calls >= self.batch or self.size >= 50_000:
            self.flush()

    def flush(self) -> None:
        if self.calls:
            self.pipe.execute()
        self.calls = self.size = 0


def _counted_rows(conn: Connection, live: LivePlan, now: dt.datetime) -> Iterator[tuple[Any, ...]]:
    """What the profiles' sets hold (counted.py), streamed in (audience, profile id) order:
    audience, profile id, unique (tracking code or event id), kind, offer, categories,
    channel, at."""
    query = every_profile(live.lookback, live.environment, now, ordered=True)
    if query is None:
        return
    result = conn.execution_options(yield_per=2000).execute(query)
    yield from cast(Iterator[tuple[Any, ...]], result)


def _glob(text: str) -> str:
    """`text` matched literally in a Redis SCAN pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
