"""Deployments: numbered, immutable snapshots of the approved catalog, per environment.

`plan` compares what would be deployed now with what the environment runs; `deploy`
validates the approved catalog and stores it as the environment's next number; an
environment may require that the same content ran on another one first (production
requires staging), which only an administrator can override, and that is audited;
`rollback` deploys an earlier number's snapshot again, as a new number.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from overture.auth import Permission, allowed
from overture.catalog import codec
from overture.catalog.model import Catalog
from overture.catalog.validate import Report, validate_catalog
from overture.design import audit
from overture.design.catalog import Actor, describe, load_draft, lock_catalog
from overture.design.errors import Conflict, Forbidden, Invalid, NotFound
from overture.design.kinds import BY_SECTION
from overture.store.models import Deployment, Environment, Lock, OfferRow


def environment(session: Session, name: str) -> Environment:
    env = session.scalar(select(Environment).where(Environment.name == name))
    if env is None:
        known = ", ".join(session.scalars(select(Environment.name)))
        raise NotFound(f"no environment {name!r}; environments: {known}")
    return env


def current(session: Session, env: Environment) -> Deployment | None:
    return session.scalar(
        select(Deployment)
        .where(Deployment.environment_id == env.id)
        .order_by(Deployment.number.desc())
        .limit(1)
    )


def snapshot_text(catalog: Catalog) -> str:
    """The catalog as canonical YAML: the same content always gives the same text (and hash)."""
    data = catalog.model_dump(mode="python", exclude_defaults=True)
    return codec.yaml_canonical(data)


def load_snapshot(text: str) -> Catalog:
    return Catalog.model_validate(codec.load(text))


def plan(session: Session, env_name: str) -> dict[str, Any]:
    """What deploying now would change in the environment, and whether it can."""
    env = environment(session, env_name)
    draft = load_draft(session, approved=True)
    catalog = draft.catalog()
    report = validate_catalog(catalog)
    deployed = current(session, env)
    old = load_snapshot(deployed.snapshot) if deployed else Catalog()
    changes = {
        section: _diff(_objects(old, section), _objects(catalog, section)) for section in BY_SECTION
    }
    settings_changed = _settings(old) != _settings(catalog)
    text = snapshot_text(catalog)
    unapproved = [
        r.code
        for r in session.scalars(select(OfferRow).order_by(OfferRow.position))
        if r.head is not None and r.head.status != "approved"
    ]
    return {
        "environment": env.name,
        "current": deployed.number if deployed else None,
        "unchanged": not settings_changed and not any(any(c.values()) for c in changes.values()),
        "changes": changes,
        "settings_changed": settings_changed,
        "content_hash": _hash(text),
        "requires": env.requires,
        "ran_on_required": _ran_on(session, env.requires, _hash(text)) if env.requires else None,
        "not_yet_approved": unapproved,
        "errors": describe(report.errors, catalog),
    }


def _never_approved(session: Session) -> list[str]:
    return list(
        session.scalars(
            select(OfferRow.code)
            .where(OfferRow.approved_revision_id.is_(None))
            .order_by(OfferRow.position)
        )
    )


def _objects(catalog: Catalog, section: str) -> dict[str, dict[str, Any]]:
    kind = BY_SECTION[section]
    return {getattr(o, kind.key): codec.plain(o) for o in getattr(catalog, section)}


def _settings(catalog: Catalog) -> dict[str, Any]:
    return catalog.model_dump(
        include={"name", "description", "settings", "context", "offer_attributes"}
    )


def _diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[str]]:
    return {
        "added": [k for k in new if k not in old],
        "changed": [k for k in new if k in old and new[k] != old[k]],
        "removed": [k for k in old if k not in new],
    }


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _ran_on(session: Session, env_name: str, content_hash: str) -> bool:
    env = session.scalar(select(Environment).where(Environment.name == env_name))
    if env is None:
        return False
    runs = session.scalar(
        select(func.count())
        .select_from(Deployment)
        .where(Deployment.environment_id == env.id, Deployment.content_hash == content_hash)
    )
    return bool(runs)


@dataclass(frozen=True)
class _Prepared:
    """The approved catalog as read at `counter` (the catalog lock's), validated."""

    counter: int
    catalog: Catalog
    report: Report
    text: str
    content_hash: str


def _prepare(session: Session) -> _Prepared | None:
    """Read, validate and serialise the approved catalog in a transaction of its own,
    before taking the catalog's lock: on SQLite that lock is the file's write lock, which
    the runtime's recorder needs for every decision, and validating under it held the
    runtime's answers for ~65 ms per deployment (docs/runtime.md, "Speed"). The counter
    is read first: every catalog change bumps it before it commits, so if it moved by
    exactly our own bump once we hold the lock, nothing changed since (under PostgreSQL's
    read committed too: a change committed between our reads moved it). None when the
    catalog cannot be read apart (an in-memory SQLite database has one connection)."""
    bind = session.get_bind()
    if bind.dialect.name == "sqlite" and bind.engine.url.database in (None, "", ":memory:"):
        return None
    with Session(bind) as read:
        counter = read.scalar(select(Lock.counter).where(Lock.name == "catalog"))
        if counter is None:
            return None
        catalog = load_draft(read, approved=True).catalog()
        read.rollback()  # nothing was written; end the read transaction now
    text = snapshot_text(catalog)
    return _Prepared(counter, catalog, validate_catalog(catalog), text, _hash(text))


def deploy(
    session: Session, actor: Actor, env_name: str, comment: str = "", force: bool = False
) -> Deployment:
    """Validate the approved catalog and store it as the environment's next deployment."""
    prepared = _prepare(session)
    lock_catalog(session)  # one consistent catalog, and one deployment at a time
    env = environment(session, env_name)
    counter = session.scalar(select(Lock.counter).where(Lock.name == "catalog"))
    if prepared is not None and counter == prepared.counter + 1:
        catalog, report = prepared.catalog, prepared.report
        text, content_hash = prepared.text, prepared.content_hash
    else:  # the catalog changed meanwhile: validate what the lock now holds still
        catalog = load_draft(session, approved=True).catalog()
        report = validate_catalog(catalog)
        text = snapshot_text(catalog)
        content_hash = _hash(text)
    if not report.ok:
        never = _never_approved(session)
        why = (
            f" ({len(never)} offer(s) have no approved revision yet, so it lacks them: "
            f"{', '.join(never[:10])}{' …' if len(never) > 10 else ''})"
            if never
            else ""
        )
        raise Invalid(
            f"the approved catalog has {len(report.errors)} error(s){why}: nothing was deployed",
            errors=describe(report.errors, catalog),
        )
    forced = False
    if env.requires and not _ran_on(session, env.requires, content_hash):
        if not force:
            raise Conflict(
                f"this content has not run on {env.requires} yet: deploy it there "
                f"first (an administrator may force it)",
                requires=env.requires,
            )
        if not allowed(actor.roles, Permission.FORCE):
            raise Forbidden(
                f"only an administrator may deploy to {env.name} what has not run on {env.requires}"
            )
        forced = True
    approved = {
        r.code: r.approved.number
        for r in session.scalars(select(OfferRow))
        if r.approved is not None
    }
    offers = {o.code: approved[o.code] for o in catalog.offers}
    deployment = _store(
        session,
        actor,
        env,
        text,
        content_hash,
        offers=offers,
        comment=comment,
        forced=forced,
        rollback_of=None,
    )
    audit.record(
        session,
        actor.name,
        "deploy.forced" if forced else "deploy",
        "environments",
        env.name,
        after={
            "number": deployment.number,
            "content_hash": content_hash,
            "comment": comment,
            "offers": offers,
        },
    )
    return deployment


def rollback(
    session: Session, actor: Actor, env_name: str, to: int, comment: str = ""
) -> Deployment:
    """Deploy deployment `to`'s snapshot again, as the next number (it ran here before, so
    no other environment needs to have run it)."""
    lock_catalog(session)
    env = environment(session, env_name)
    earlier = session.scalar(
        select(Deployment).where(Deployment.environment_id == env.id, Deployment.number == to)
    )
    if earlier is None:
        raise NotFound(f"{env.name} has no deployment {to}")
    deployment = _store(
        session,
        actor,
        env,
        earlier.snapshot,
        earlier.content_hash,
        offers=dict(earlier.offers),
        comment=comment or f"rollback to {to}",
        forced=False,
        rollback_of=to,
    )
    audit.record(
        session,
        actor.name,
        "rollback",
        "environments",
        env.name,
        after={"number": deployment.number, "rollback_of": to, "comment": comment},
    )
    return deployment


def _store(
    session: Session,
    actor: Actor,
    env: Environment,
    text: str,
    content_hash: str,
    *,
    offers: dict[str, int],
    comment: str,
    forced: bool,
    rollback_of: int | None,
) -> Deployment:
    previous = current(session, env)
    name = env.name  # (the session cannot load anything once a flush failed)
    deployment = Deployment(
        environment_id=env.id,
        number=(previous.number if previous else 0) + 1,
        snapshot=text,
        content_hash=content_hash,
        offers=offers,
        comment=comment,
        deployed_by=actor.name,
        forced=forced,
        rollback_of=rollback_of,
    )
    session.add(deployment)
    try:
        session.flush()
    except IntegrityError:  # the whole request rolls back: nothing of this deployment stays
        raise Conflict(
            f"another deployment to {name} happened at the same time; look at "
            "the history and try again"
        ) from None
    return deployment


def history(
    session: Session, env_name: str, limit: int = 50, offset: int = 0
) -> tuple[list[Deployment], int]:
    env = environment(session, env_name)
    stmt = select(Deployment).where(Deployment.environment_id == env.id)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Deployment.number.desc()).limit(limit).offset(offset))
    return list(rows), total


def get_deployment(session: Session, env_name: str, number: int) -> Deployment:
    env = environment(session, env_name)
    deployment = session.scalar(
        select(Deployment).where(Deployment.environment_id == env.id, Deployment.number == number)
    )
    if deployment is None:
        raise NotFound(f"{env.name} has no deployment {number}")
    return deployment
