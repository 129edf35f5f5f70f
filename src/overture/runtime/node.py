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

from overture.history.failures import DependencyState
from overture.history.ledger import Ledger
from overture.history.recorder import Recorder
from overture.history.sql_ledger import SqlLedger
from overture.runtime.health import Health
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
    # keep the reports' daily rollup as history is written (history/rollups.py); off only
    # to measure what it costs (benchmarks/runtime.py)
    report_rollups: bool = True
    # a decision request may say when it happened (`at`): only for a demo server, whose
    # demo traffic fills past days (overture demo-traffic); never in production
    accept_decision_times: bool = False
    # how far ahead of the node's clock an event may be dated (`at`): clocks drift a little;
    # an event further ahead is refused (it would count against caps until that time)
    event_skew_seconds: float = 300.0
    # A serving process freezes what it built at start (modules, the plans) and makes the
    # garbage collector's full passes rare: over the app's ~130,000 objects each paused
    # the event loop for ~100 ms, which made the slowest 1% of decisions.
    freeze_startup_objects: bool = False
    # how often the node checks its database and Redis (docs/runtime.md, "Failures")
    probe_seconds: float = 1.0
    # how old a claim whose write may have failed is before it is checked against the
    # history (history/redis_ledger.py); tests shorten it
    settle_after_seconds: float = 60.0


class RuntimeNode:
    def __init__(self, settings: RuntimeSettings, db: Database | None = None) -> None:
        self.settings = settings
        self.db = db or Database(settings.database)
        self.metrics = Metrics()
        self.plans = LivePlans(self.db, settings.environments, settings.poll_seconds)
        # what the node knows of its dependencies (history/failures.py)
        self.database = DependencyState("database")
        self.redis = DependencyState("redis", used=bool(settings.redis))
        self.recorder = Recorder(self.db, state=self.database)
        # threads for the rare database reads (tracking codes of other nodes, API keys)
        self.readers = ThreadPoolExecutor(4, thread_name_prefix="overture-read")
        self.ledger: Ledger
        self.sessions: SessionStore
        if settings.redis:
            from overture.history.redis_ledger import RedisLedger

            self.ledger = RedisLedger(
                self.db,
                self.recorder,
                self.readers,
                settings.redis,
                settings.redis_prefix,
                rollups=settings.report_rollups,
                state=self.redis,
                settle_after=settings.settle_after_seconds,
            )
            self.sessions = RedisSessions(
                settings.redis, settings.session_idle_seconds, settings.redis_prefix
            )
        else:
            self.ledger = SqlLedger(
                self.db, self.recorder, self.readers, rollups=settings.report_rollups
            )
            self.sessions = MemorySessions(settings.session_idle_seconds, settings.max_sessions)
        self.profiles = ProfileSource(
            self.db, ttl_seconds=settings.profile_cache_seconds, state=self.database
        )
        self.keys = ApiKeys(self.db, settings.key_recheck_seconds, state=self.database)
        self.runtime = Runtime(
            self.plans,
            self.ledger,
            self.sessions,
            self.profiles,
            self.metrics,
            decision_times=settings.accept_decision_times,
            event_skew_seconds=settings.event_skew_seconds,
        )
        self.health = Health(
            self.db,
            self.plans,
            self.ledger,
            database=self.database,
            redis=self.redis,
            metrics=self.metrics,
            probe_seconds=settings.probe_seconds,
        )

    @property
    def started(self) -> bool:
        return self.health.started

    async def start(self) -> None:
        await self.ledger.start()
        await self.plans.start()
        # counters Redis lost are rebuilt from the history before the node serves
        await self.health.start()
        if self.settings.freeze_startup_objects:
            gc.collect()
            gc.freeze()
            # young passes over more objects each (a millisecond or two), and full passes
            # (tens of ms over the caches) only after ~a billion allocations: a request's
            # own reference cycles die young, in the first two generations
            gc.set_threshold(20_000, 50, 1000)
        self.health.started = True

    async def stop(self) -> None:
        """Stop watching deployments, then write everything accepted (the recorder drains
        its queue), then close connections."""
        self.health.started = False
        await self.health.stop()
        await self.plans.stop()
        await self.recorder.aclose()
        await self.ledger.close()
        await self.sessions.close()
        await self.profiles.aclose()
        self.readers.shutdown(wait=True)
