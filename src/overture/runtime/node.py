"""A runtime node: its parts, put together from a few settings, started and stopped.

    node = RuntimeNode(RuntimeSettings(database="sqlite:///overture.db"))
    await node.start()     # loads the current deployments, starts the recorder
    ...                    # node.runtime decides; node.keys checks API keys
    await node.stop()      # writes everything accepted, then stops

Stateless apart from the database and the optional Redis: several nodes may serve one
environment side by side.
"""

from __future__ import annotations

import gc
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from overture.history.ledger import Ledger
from overture.history.recorder import Recorder
from overture.history.sql_ledger import SqlLedger
from overture.runtime.keys import ApiKeys
from overture.runtime.metrics import Metrics
from overture.runtime.plans import LivePlans
from overture.runtime.profiles import ProfileSource
from overture.runtime.service import Runtime
from overture.runtime.sessions import MemorySessions, RedisSessions, SessionStore
from overture.store import Database


@dataclass
class RuntimeSettings:
    database: str | None = None  # URL or SQLite path; None: OVERTURE_DATABASE_URL or default
    environments: list[str] | None = None  # None: every environment
    redis: str | None = None  # counters and sessions in Redis (shared by nodes)
    poll_seconds: float = 1.0  # how often to look for a new deployment
    session_idle_seconds: float = 1800.0
    max_sessions: int = 100_000  # held in memory (without Redis)
    profile_cache_seconds: float = 30.0
    key_recheck_seconds: float = 30.0
    redis_prefix: str = "overture"
    # A serving process freezes what it built at start (modules, the plans) and makes the
    # garbage collector's full passes rare: over the app's ~130,000 objects each paused
    # the event loop for ~100 ms, which made the slowest 1% of decisions.
    freeze_startup_objects: bool = False


class RuntimeNode:
    def __init__(self, settings: RuntimeSettings, db: Database | None = None) -> None:
        self.settings = settings
        self.db = db or Database(settings.database)
        self.metrics = Metrics()
        self.plans = LivePlans(self.db, settings.environments, settings.poll_seconds)
        self.recorder = Recorder(self.db)
        # threads for the rare database reads (tracking codes of other nodes, API keys)
        self.readers = ThreadPoolExecutor(4, thread_name_prefix="overture-read")
        self.ledger: Ledger
        self.sessions: SessionStore
        if settings.redis:
            from overture.history.redis_ledger import RedisLedger

            self.ledger = RedisLedger(
                self.db, self.recorder, self.readers, settings.redis, settings.redis_prefix
            )
            self.sessions = RedisSessions(
                settings.redis, settings.session_idle_seconds, settings.redis_prefix
            )
        else:
            self.ledger = SqlLedger(self.db, self.recorder, self.readers)
            self.sessions = MemorySessions(settings.session_idle_seconds, settings.max_sessions)
        self.profiles = ProfileSource(self.db, ttl_seconds=settings.profile_cache_seconds)
        self.keys = ApiKeys(self.db, settings.key_recheck_seconds)
        self.runtime = Runtime(self.plans, self.ledger, self.sessions, self.profiles, self.metrics)
        self.started = False

    async def start(self) -> None:
        await self.ledger.start()
        await self.plans.start()
        if self.settings.freeze_startup_objects:
            gc.collect()
            gc.freeze()
            # young passes over more objects each (a millisecond or two), and full passes
            # (tens of ms over the caches) only after ~a billion allocations: a request's
            # own reference cycles die young, in the first two generations
            gc.set_threshold(20_000, 50, 1000)
        self.started = True

    async def stop(self) -> None:
        """Stop watching deployments, then write everything accepted (the recorder drains
        its queue), then close connections."""
        self.started = False
        await self.plans.stop()
        await self.recorder.aclose()
        await self.ledger.close()
        await self.sessions.close()
        await self.profiles.aclose()
        self.readers.shutdown(wait=True)
