"""The plans a runtime node decides with: each environment's current deployment, compiled.

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
import contextlib
import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import func, select

from overture.catalog import Catalog, ChannelEvents, Offer
from overture.design import codec
from overture.engine import DecisionPlan, build_plan
from overture.store import Database
from overture.store.models import Deployment, Environment

log = logging.getLogger("overture.runtime")


@dataclass(frozen=True, slots=True)
class InventoryRule:
    policy: str
    limit: int
    per: str  # day or total


@dataclass(frozen=True)
class LivePlan:
    """A deployment ready to decide with, and what the runtime derives from it once."""

    environment: str
    deployment: int
    content_hash: str
    plan: DecisionPlan
    loaded_at: dt.datetime
    # (placement, offer) -> the inventory policies a proposition there draws on
    inventory: Mapping[tuple[str, str], tuple[InventoryRule, ...]]
    # How far back presentation policies look: propositions (capping), responses
    # (suppression); None: nothing needs them; EVER: suppression without a period.
    presented_window: dt.timedelta | None
    responses_window: dt.timedelta | None
    responses_ever: bool
    offer_categories: Mapping[str, tuple[str, ...]]  # offer code -> its category chain
    offer_channels: Mapping[str, tuple[str, ...]]  # offer code -> channels it appears on
    channel_events: Mapping[str, ChannelEvents]
    offers: Mapping[str, Offer]  # by code, as the catalog defines them

    @property
    def catalog(self) -> Catalog:
        return self.plan.catalog

    def event_kind(self, channel: str | None, name: str) -> str:
        """presented, accepted, rejected or custom, as the channel names its events."""
        events = self.channel_events.get(channel or "") or _DEFAULT_EVENTS
        return events.kind_of(name)


_DEFAULT_EVENTS = ChannelEvents()


def compile_live(environment: str, deployment: Deployment) -> LivePlan:
    catalog = Catalog.model_validate(codec.load(deployment.snapshot))
    plan = build_plan(catalog, validated=True)
    inventory: dict[tuple[str, str], tuple[InventoryRule, ...]] = {}
    presented: dt.timedelta | None = None
    responses: dt.timedelta | None = None
    ever = False
    offer_categories: dict[str, tuple[str, ...]] = {}
    offer_channels: dict[str, set[str]] = {}
    for placement in plan.placements.values():
        for candidates in placement.candidates.values():
            for cand in candidates:
                offer_categories[cand.offer.code] = cand.offer.categories
                offer_channels.setdefault(cand.offer.code, set()).add(placement.channel)
                rules = []
                for policy, _key in cand.policies:
                    if policy.kind == "inventory":
                        rules.append(InventoryRule(policy.name, policy.limit, policy.per))
                    elif policy.kind == "capping" and policy.window is not None:
                        presented = max(presented or policy.window, policy.window)
                    elif policy.kind == "suppression":
                        if policy.window is None:
                            ever = True
                        else:
                            responses = max(responses or policy.window, policy.window)
                if rules:
                    inventory[placement.name, cand.offer.code] = tuple(rules)
    return LivePlan(
        environment=environment,
        deployment=deployment.number,
        content_hash=deployment.content_hash,
        plan=plan,
        loaded_at=dt.datetime.now(dt.UTC),
        inventory=inventory,
        presented_window=presented,
        responses_window=responses,
        responses_ever=ever,
        offer_categories=offer_categories,
        offer_channels={code: tuple(sorted(c)) for code, c in offer_channels.items()},
        channel_events={c.name: c.events for c in catalog.channels},
        offers={o.code: o for o in catalog.offers},
    )


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
        with self.db.session() as s:
            query = (
                select(Environment.name, func.max(Deployment.number))
                .outerjoin(Deployment, Deployment.environment_id == Environment.id)
                .group_by(Environment.name)
            )
            current: dict[str, int | None] = {
                name: number
                for name, number in s.execute(query).all()
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
                with self.db.session() as s:
                    deployment = s.scalar(
                        select(Deployment)
                        .join(Environment, Deployment.environment_id == Environment.id)
                        .where(Environment.name == name, Deployment.number == number)
                    )
                    assert deployment is not None
                    s.expunge(deployment)
                new = compile_live(name, deployment)
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
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:  # the database may be briefly away: keep serving, retry
                log.exception("could not check for new deployments")
