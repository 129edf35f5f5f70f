"""Shared steps for design tests: the demo catalog's files, approving everything."""

from __future__ import annotations

from sqlalchemy.orm import Session

from overture.demo import CATALOG_PATH
from overture.design import offers
from overture.design.catalog import Actor

ADMIN = Actor("ann", frozenset({"administrator"}))
MANAGER = Actor("olga", frozenset({"offer_manager"}))
APPROVER = Actor("abe", frozenset({"approver"}))
DEPLOYER = Actor("dan", frozenset({"deployer"}))


def demo_files() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(CATALOG_PATH.glob("*.yaml"))}


def approve_all(session: Session) -> int:
    """Submit and approve every offer that is not approved; returns how many."""
    done = 0
    items, _ = offers.list_offers(session, limit=10_000)
    for item in items:
        version = item.version
        if item.extra["status"] in ("draft", "rejected"):
            version = offers.submit(session, MANAGER, item.key, version).version
        if item.extra["status"] != "approved":
            offers.approve(session, APPROVER, item.key, version)
            done += 1
    return done
