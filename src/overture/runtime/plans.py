"""The plans a runtime node decides with: each environment's current deployment, compiled
(history/deployed.py compiles it, as batches and the counters' rebuild do).

A node reads which deployment is current for each environment it serves, compiles the new
ones into DecisionPlans off the event loop, and swaps them in by replacing one dictionary
entry. A request reads the entry once and decides with that plan to the end, so it is
answered wholly from the old plan or wholly from the new one, never from a mix; a plan
that fails to build leaves the previous one serving (and says why in the log and in
/readyz).

Polling rather than notification: it works the same on SQLite and PostgreSQL, costs one
small query a second, and a deployment is picked up within the poll interval.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from overture.history.deployed import LivePlan, current_deployments, load_deployment
from overture.history.failures import database_down, reason
from overture.runtime.background import cancel
from overture.store import Database

log = logging.getLogger("overture.runtime")


@dataclass
class PlanStatus:
    """What /readyz and /metrics tell about an environment's plan."""

    deployment: int | None = None  # the one serving
    latest: int | None = None  # the environment's current one (to load when it differs)
    error: str | None = None
    failed_deployment: int | None = None
    swaps: int = 0
    checked_at: dt.datetime | None = None


class LivePlans:
    """The current plan of each environment a node serves, kept up to date by polling."""

    def __init__(
        self, db: Database, environments: Iterable[str] | None = None, poll_seconds: float = 1.0
    ) -> None:
        self.db = db
        self.only = frozenset(environments) if environments is not None else None
        self.poll_seconds = poll_seconds
        self._plans: dict[str, LivePlan] = {}
        self.status: dict[str, PlanStatus] = {}
        self._task: asyncio.Task[None] | None = None

    def get(self, environment: str) -> LivePlan | None:
        return self._plans.get(environment)

    @property
    def environments(self) -> list[str]:
        """The environments served (those named, or all that exist)."""
        return sorted(self.status)

    def serves(self, environment: str) -> bool:
        return environment in self.status

    def refresh(self) -> list[str]:
        """Load what changed (blocking: call it from a thread). Returns the environments
        whose plan was swapped."""
        current = {
            name: number
            for name, number in current_deployments(self.db).items()
            if self.only is None or name in self.only
        }
        swapped = []
        now = dt.datetime.now(dt.UTC)
        for name, number in current.items():
            status = self.status.setdefault(name, PlanStatus())
            status.checked_at = now
            status.latest = number
            live = self._plans.get(name)
            if number is None or (live is not None and live.deployment == number):
                continue
            if status.failed_deployment == number:
                continue  # tried and failed: wait for the next deployment
            try:
                new = load_deployment(self.db, name, number)
            except Exception as exc:  # keep serving the previous plan
                status.failed_deployment = number
                status.error = f"deployment #{number} failed to load: {type(exc).__name__}: {exc}"
                log.exception("environment %s: %s", name, status.error)
                continue
            self._plans[name] = new  # the swap: one assignment
            status.deployment = number
            status.error = None
            status.failed_deployment = None
            status.swaps += 1
            swapped.append(name)
            log.info("environment %s now serves deployment #%d", name, number)
        return swapped

    async def start(self) -> None:
        await asyncio.to_thread(self.refresh)
        self._task = asyncio.create_task(self._poll(), name="overture-plan-watch")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel(self._task)
            self._task = None

    async def _poll(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await asyncio.to_thread(self.refresh)
            except Exception as exc:  # the database may be briefly away: keep serving, retry
                if not database_down(exc):
                    log.exception("could not check for new deployments")
                elif not failing:  # once per outage, not every poll
                    log.error("could not check for new deployments: %s", reason(exc))
                failing = True
            else:
                failing = False
