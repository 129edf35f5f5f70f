"""What a node knows of its dependencies, kept current, for /readyz and /metrics.

Every `probe_seconds` the node reads `SELECT 1` from its database (a connection of its
own, with a time-out) and runs its ledger's upkeep: with Redis, that checks each
environment's counters are there (and has them rebuilt from the history when Redis lost
them), adds to Redis what was recorded while it was down, and settles the claims whose
write failed (history/redis_ledger.py). Requests mark a dependency down as soon as a call
fails, and the probe marks it up again within a second of its answering (in between,
calls fail at once: failures.DependencyState).

/readyz (docs/runtime.md, "Failures"): `status` is "ready", "degraded" (Redis down, or its
counters being rebuilt: decisions leave out the offers policies count) or "unavailable"
(not started, a deployment not loaded yet, or the database down: nothing can be recorded),
answered 200, 200 and 503.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from overture.history.failures import DependencyState, database_down, reason
from overture.history.ledger import Ledger
from overture.runtime.background import cancel
from overture.runtime.metrics import Metrics
from overture.runtime.plans import LivePlans
from overture.store import Database
from overture.store.raw import Reader

log = logging.getLogger("overture.runtime")

PROBE_TIMEOUT = 2.0  # seconds a probe of the database may take


class Health:
    def __init__(
        self,
        db: Database,
        plans: LivePlans,
        ledger: Ledger,
        *,
        database: DependencyState,
        redis: DependencyState,
        metrics: Metrics,
        probe_seconds: float = 1.0,
    ) -> None:
        self.plans = plans
        self.ledger = ledger
        self.database = database
        self.redis = redis
        self.metrics = metrics
        self.probe_seconds = probe_seconds
        self.started = False
        self._reader = Reader(db, connections=1)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Check once, waiting for counters Redis lost to be rebuilt (within reason), then
        keep checking in the background."""
        await self.check(starting=True)
        self._task = asyncio.get_running_loop().create_task(self._watch(), name="overture-health")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel(self._task)
            self._task = None
        await self._reader.aclose()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.probe_seconds)
            try:
                await self.check()
            except Exception:  # keep watching
                log.exception("could not check the node's dependencies")

    async def check(self, *, starting: bool = False) -> None:
        """One round: probe the database, keep the counts in step (Ledger.upkeep)."""
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):  # (not wait_for: background.py)
                await self._reader.rows("SELECT 1", ())
        except Exception as exc:
            if not database_down(exc):
                raise
            if self.database.up:
                log.error("the database does not answer: %s", reason(exc))
            self.database.failed(exc)
        else:
            if not self.database.up:
                log.warning("the database answers again")
            self.database.answered()
        lives = [live for e in self.plans.environments if (live := self.plans.get(e))]
        was_up = self.redis.up
        await self.ledger.upkeep(lives, starting=starting)
        if self.redis.used and was_up != self.redis.up:
            if self.redis.up:
                log.warning("Redis answers again")
            else:
                log.error("Redis does not answer: %s", self.redis.error)

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """/readyz: whether the node is ready (200) and what it tells."""
        environments: dict[str, Any] = {}
        current = True
        for name, status in self.plans.status.items():
            environments[name] = {
                "deployment": status.deployment,
                "latest": status.latest,
                "error": status.error,
            }
            current = current and status.deployment == status.latest
        counters = self.ledger.counters()
        redis = self.redis.view()
        if self.redis.used:
            redis["counters"] = counters
        ready = self.started and current and self.database.up
        degraded = self.redis.used and (
            not self.redis.up or any(state != "ready" for state in counters.values())
        )
        body = {
            "ready": ready,
            "status": "unavailable" if not ready else "degraded" if degraded else "ready",
            "environments": environments,
            "dependencies": {"database": self.database.view(), "redis": redis},
        }
        return ready, body

    def export(self) -> None:
        """Set the gauges /metrics shows."""
        metrics = self.metrics
        metrics.dependency_up.labels("database").set(int(self.database.up))
        if self.redis.used:
            metrics.dependency_up.labels("redis").set(int(self.redis.up))
        for env, state in self.ledger.counters().items():
            metrics.counters_ready.labels(env).set(int(state == "ready"))
        metrics.counts_taken_back.set(getattr(self.ledger, "taken_back", 0))
        metrics.counters_rebuilt.set(getattr(self.ledger, "rebuilt", 0))
