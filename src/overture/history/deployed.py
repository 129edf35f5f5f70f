"""An environment's deployment, compiled, with what its history is counted by.

A deployment snapshot is the validated catalog serialized once (design/deployments.py).
Whoever decides with it, a runtime node (runtime/plans.py keeps each environment's current
one), a batch or a simulation (batch/run.py), or rebuilds its counters (rebuild.py),
compiles it the same way, here: the DecisionPlan, and what the history derives from it
once (how far back policies look, which inventories a proposition draws on, each offer's
categories and channels, how each channel names its events).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import func, select

from overture.catalog import Catalog, ChannelEvents, Offer, codec
from overture.engine import DecisionPlan, build_plan
from overture.history.windows import InventoryRule, Lookback, inventory_rules
from overture.store import Database
from overture.store.models import Deployment, Environment


class NotDeployed(LookupError):
    """The environment is unknown, has no deployment, or its deployment fails to load."""


@dataclass(frozen=True)
class LivePlan:
    """A deployment ready to decide with, and what the history derives from it once."""

    environment: str
    deployment: int
    content_hash: str
    plan: DecisionPlan
    loaded_at: dt.datetime
    # (placement, offer) -> the inventory policies a proposition there draws on
    inventory: Mapping[tuple[str, str], tuple[InventoryRule, ...]]
    lookback: Lookback  # how far back presentation policies look
    offer_categories: Mapping[str, tuple[str, ...]]  # offer code -> its category chain
    offer_channels: Mapping[str, tuple[str, ...]]  # offer code -> channels it appears on
    channel_events: Mapping[str, ChannelEvents]
    offers: Mapping[str, Offer]  # by code, as the catalog defines them
    # the codes of the offers of the environment's earlier deployments: they may still get
    # events (a page shown, an email sent before this deployment), unlike codes none had
    earlier_offers: frozenset[str] = frozenset()
    # (channel, event name) -> kind, as first worked out (names come from clients: bounded)
    _kinds: dict[tuple[str, str], str] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    @property
    def catalog(self) -> Catalog:
        return self.plan.catalog

    def knows_offer(self, code: str) -> bool:
        """Whether this deployment or an earlier one of the environment has the offer."""
        return code in self.offers or code in self.earlier_offers

    def offer_in_any_case(self, code: str) -> str | None:
        """The code of this deployment's offer that is `code` in another case, if any."""
        return self._folded_codes.get(code.casefold())

    @functools.cached_property
    def _folded_codes(self) -> dict[str, str]:
        return {c.casefold(): c for c in self.offers}

    def event_kind(self, channel: str | None, name: str) -> str:
        """presented, accepted, rejected or custom, as the channel names its events."""
        key = (channel or "", name)
        kind = self._kinds.get(key)
        if kind is None:
            events = self.channel_events.get(key[0]) or _DEFAULT_EVENTS
            kind = events.kind_of(name)
            if len(self._kinds) < 10_000:
                self._kinds[key] = kind
        return kind


_DEFAULT_EVENTS = ChannelEvents()


def compile_live(
    environment: str, deployment: Deployment, earlier_offers: frozenset[str] = frozenset()
) -> LivePlan:
    """A stored deployment, compiled."""
    catalog = Catalog.model_validate(codec.load(deployment.snapshot))
    return live_plan(
        environment, catalog, deployment.number, deployment.content_hash, earlier_offers
    )


def live_plan(
    environment: str,
    catalog: Catalog,
    number: int = 1,
    content_hash: str = "",
    earlier_offers: frozenset[str] = frozenset(),
) -> LivePlan:
    """A validated catalog as deployment `number` of `environment` (tests and tools use it
    without storing a deployment)."""
    plan = build_plan(catalog, validated=True)
    offer_categories: dict[str, tuple[str, ...]] = {}
    offer_channels: dict[str, set[str]] = {}
    for placement in plan.placements.values():
        for candidates in placement.candidates.values():
            for cand in candidates:
                offer_categories[cand.offer.code] = cand.offer.categories
                offer_channels.setdefault(cand.offer.code, set()).add(placement.channel)
    return LivePlan(
        environment=environment,
        deployment=number,
        content_hash=content_hash,
        plan=plan,
        loaded_at=dt.datetime.now(dt.UTC),
        inventory=inventory_rules(plan),
        lookback=Lookback.of(plan),
        offer_categories=offer_categories,
        offer_channels={code: tuple(sorted(c)) for code, c in offer_channels.items()},
        channel_events={c.name: c.events for c in catalog.channels},
        offers={o.code: o for o in catalog.offers},
        earlier_offers=earlier_offers,
    )


def current_deployments(db: Database) -> dict[str, int | None]:
    """Every environment and the number of its current deployment (None: none yet)."""
    with db.session() as s:
        query = (
            select(Environment.name, func.max(Deployment.number))
            .outerjoin(Deployment, Deployment.environment_id == Environment.id)
            .group_by(Environment.name)
        )
        return dict(s.execute(query).all())


def load_deployment(db: Database, environment: str, number: int) -> LivePlan:
    """Deployment `number` of `environment`, compiled (it must exist)."""
    with db.session() as s:
        deployment = s.scalar(
            select(Deployment)
            .join(Environment, Deployment.environment_id == Environment.id)
            .where(Environment.name == environment, Deployment.number == number)
        )
        if deployment is None:
            raise NotDeployed(f"environment {environment!r} has no deployment #{number}")
        earlier = s.scalars(
            select(Deployment.offers).where(
                Deployment.environment_id == deployment.environment_id,
                Deployment.number < number,
            )
        )
        earlier_offers = frozenset(code for offers in earlier for code in offers)
        s.expunge(deployment)
    return compile_live(environment, deployment, earlier_offers)


def load_live(db: Database, environment: str) -> LivePlan:
    """The environment's current deployment, compiled as the runtime nodes compile it;
    NotDeployed, saying what to do, when there is none to compile."""
    current = current_deployments(db)
    if environment not in current:
        from overture.rules.parser import suggest

        known = sorted(current)
        hint = suggest(environment, known) or f"known: {', '.join(known) or 'none'}"
        raise NotDeployed(f"no environment {environment!r}; {hint}")
    number = current[environment]
    if number is None:
        raise NotDeployed(
            f"environment {environment!r} has no deployment yet: there is nothing to count; "
            f"deploy a catalog to it first (overture deploy --env {environment})"
        )
    try:
        return load_deployment(db, environment, number)
    except NotDeployed:
        raise
    except Exception as exc:
        raise NotDeployed(
            f"environment {environment!r}: deployment #{number} failed to load: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
