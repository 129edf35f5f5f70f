"""Offers and their approval workflow.

    draft ──submit──▶ pending ──approve──▶ approved ──(deploy)──▶ live in an environment
      ▲                 │  └──reject (comment)──▶ rejected
      └───withdraw──────┘                          │ edit
                                                   ▼
                                                 draft

Editing a draft or a rejected revision changes it in place (a rejected one becomes a draft
again); editing a pending one changes it in place and it stays pending (an approver's
approval names the version they read, so they never approve what they did not see);
editing an approved offer opens a new pending revision, while the approved one stays
what deployments take. Only approved revisions are ever deployed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from overture.catalog import codec
from overture.catalog.model import Offer
from overture.design import audit
from overture.design.catalog import (
    Actor,
    Stored,
    check_change,
    expect_version,
    flush_or_stale,
    flush_or_taken,
    lock_catalog,
)
from overture.design.errors import Conflict, NotFound, ServiceError
from overture.store.models import Approval, Deployment, Environment, OfferRevision, OfferRow, utcnow

STATUSES = ("draft", "pending", "approved", "rejected")


def _row(session: Session, code: str) -> OfferRow:
    row = session.scalar(select(OfferRow).where(OfferRow.code == code))
    if row is None:
        raise NotFound(f"no offer {code!r}")
    return row


def _stored(row: OfferRow, warnings: list[dict[str, Any]] | None = None) -> Stored[Offer]:
    head = row.head
    assert head is not None
    return Stored(
        "offers",
        row.code,
        row.version,
        Offer.model_validate(codec.load(head.body)),
        row.created_at,
        row.created_by,
        row.updated_at,
        row.updated_by,
        extra={
            "status": head.status,
            "revision": head.number,
            "approved_revision": row.approved.number if row.approved else None,
        },
        warnings=warnings or [],
    )


def list_offers(
    session: Session,
    *,
    q: str | None = None,
    status: str | None = None,
    category: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Stored[Offer]], int]:
    stmt = select(OfferRow).order_by(OfferRow.position, OfferRow.id)
    if q:
        stmt = stmt.where(func.lower(OfferRow.code).contains(q.lower(), autoescape=True))
    if status is not None and status not in STATUSES:
        raise ServiceError(f"unknown status {status!r}; statuses: {', '.join(STATUSES)}")
    if category:
        stmt = stmt.where(OfferRow.category == category)
    items = [_stored(r) for r in session.scalars(stmt)]
    if status:
        items = [i for i in items if i.extra["status"] == status]
    page = items[offset : offset + limit]
    running = _running(session)
    for item in page:
        item.extra["live"] = _live(running, item.key)
    return page, len(items)


def get_offer(session: Session, code: str) -> Stored[Offer]:
    stored = _stored(_row(session, code))
    stored.extra["live"] = _live(_running(session), stored.key)
    return stored


def _running(session: Session) -> dict[str, dict[str, int]]:
    """Environment -> the offers its current deployment holds (code -> revision)."""
    out: dict[str, dict[str, int]] = {}
    for env in session.scalars(select(Environment).order_by(Environment.id)):
        offers = session.scalar(  # only the offers column: snapshots are large
            select(Deployment.offers)
            .where(Deployment.environment_id == env.id)
            .order_by(Deployment.number.desc())
            .limit(1)
        )
        if offers is not None:
            out[env.name] = offers
    return out


def _live(running: dict[str, dict[str, int]], code: str) -> dict[str, int]:
    """The environments running this offer, and which revision."""
    return {env: offers[code] for env, offers in running.items() if code in offers}


def create_offer(session: Session, actor: Actor, spec: Offer) -> Stored[Offer]:
    lock_catalog(session)
    existing = session.scalar(
        select(OfferRow).where(func.lower(OfferRow.code) == spec.code.lower())
    )
    if existing is not None:
        raise Conflict(
            f"an offer with code {existing.code!r} already exists", current_version=existing.version
        )
    data = codec.plain(spec)
    warnings = check_change(
        session, lambda d: d.sections["offers"].__setitem__(spec.code, data), ("offers", spec.code)
    )
    position = int(session.scalar(select(func.coalesce(func.max(OfferRow.position), -1))) or 0) + 1
    row = add_offer(session, actor, spec, position)
    session.refresh(row)
    audit.record(session, actor.name, "offers.create", "offers", spec.code, after=data)
    return _stored(row, warnings)


def update_offer(
    session: Session, actor: Actor, code: str, spec: Offer, version: int | None
) -> Stored[Offer]:
    lock_catalog(session)
    row = _row(session, code)
    expect_version(row.version, version, f"offer {code!r}")
    if spec.code != code:
        raise Conflict(
            f"the offer is {code!r} but the body says {spec.code!r}; codes cannot "
            "change: create the new offer and delete this one"
        )
    head = row.head
    assert head is not None
    before = codec.load(head.body)
    data = codec.plain(spec)
    if data == before:  # nothing changed: no new revision, no new version
        return _stored(row)
    warnings = check_change(
        session, lambda d: d.sections["offers"].__setitem__(code, data), ("offers", code)
    )
    revise(session, actor, row, spec)
    session.refresh(row)
    audit.record(session, actor.name, "offers.update", "offers", code, before=before, after=data)
    return _stored(row, warnings)


def add_offer(session: Session, actor: Actor, spec: Offer, position: int) -> OfferRow:
    """A new offer: its row and revision 1, a draft (what creating one and importing one
    both do; the caller validated the catalog and audits)."""
    row = OfferRow(
        code=spec.code,
        position=position,
        category=spec.category,
        created_by=actor.name,
        updated_by=actor.name,
    )
    session.add(row)
    flush_or_taken(session, f"offer {spec.code!r}")
    revision = OfferRevision(
        offer_id=row.id, number=1, body=codec.encode(spec), status="draft", created_by=actor.name
    )
    session.add(revision)
    session.flush()
    row.head_revision_id = revision.id
    session.flush()
    return row


def revise(
    session: Session, actor: Actor, row: OfferRow, spec: Offer, position: int | None = None
) -> None:
    """Give an offer a new body, as the workflow says (the module's docstring): a draft, a
    pending or a rejected revision changes in place (a rejected one becomes a draft again);
    an approved one stays what deployments take, and a new pending revision holds the
    change. A concurrent writer that got there first makes this one Stale (what editing
    one and importing a catalog both do; the caller validated the catalog and audits). The
    offer's row is written once, so its version goes up by one, `position` included."""
    head = row.head
    assert head is not None
    if head.status == "approved":  # a new revision, pending; the approved one stays
        head = OfferRevision(
            offer_id=row.id,
            number=head.number + 1,
            body=codec.encode(spec),
            status="pending",
            created_by=actor.name,
            submitted_by=actor.name,
            submitted_at=utcnow(),
        )
        session.add(head)
        flush_or_stale(session, f"offer {row.code!r}")  # another editor's revision n+1 came first
        row.head_revision_id = head.id
    else:
        head.body = codec.encode(spec)
        if head.status == "rejected":
            head.status = "draft"
    _touch(row, actor, spec.category)
    if position is not None:
        row.position = position
    flush_or_stale(session, f"offer {row.code!r}")


def delete_offer(session: Session, actor: Actor, code: str, version: int | None) -> None:
    lock_catalog(session)
    row = _row(session, code)
    expect_version(row.version, version, f"offer {code!r}")
    before = codec.load(row.head.body) if row.head else None
    check_change(session, lambda d: d.sections["offers"].pop(code))
    remove_offer(session, row)
    audit.record(session, actor.name, "offers.delete", "offers", code, before=before)


def remove_offer(session: Session, row: OfferRow) -> None:
    """Delete an offer and its revisions (what deleting one and importing a catalog
    without it both do); a concurrent writer that got there first makes this one Stale."""
    for revision in session.scalars(select(OfferRevision).where(OfferRevision.offer_id == row.id)):
        session.delete(revision)
    session.delete(row)
    flush_or_stale(session, f"offer {row.code!r}")


def _touch(row: OfferRow, actor: Actor, category: str | None = None) -> None:
    """Mark the offer changed (its version goes up, so concurrent readers become stale)."""
    row.updated_by, row.updated_at = actor.name, utcnow()
    if category is not None:
        row.category = category


def _transition(
    session: Session,
    actor: Actor,
    code: str,
    version: int | None,
    *,
    allowed: tuple[str, ...],
    target: str,
    action: str,
    comment: str | None = None,
) -> Stored[Offer]:
    lock_catalog(session)  # approving changes what deploys: not in the middle of a deploy
    row = _row(session, code)
    expect_version(row.version, version, f"offer {code!r}")
    head = row.head
    assert head is not None
    if head.status not in allowed:
        raise Conflict(
            f"offer {code!r} revision {head.number} is {head.status}; it must be "
            f"{' or '.join(allowed)} to {action}"
        )
    before = {"status": head.status, "revision": head.number}
    head.status = target
    if target == "pending":
        head.submitted_by, head.submitted_at = actor.name, utcnow()
    if action in ("approve", "reject"):
        session.add(
            Approval(
                revision_id=head.id, decision=target, comment=comment or "", decided_by=actor.name
            )
        )
    if target == "approved":
        row.approved_revision_id = head.id
    _touch(row, actor)
    flush_or_stale(session, f"offer {code!r}")
    session.refresh(row)
    audit.record(
        session,
        actor.name,
        f"offers.{action}",
        "offers",
        code,
        before=before,
        after={"status": target, "revision": head.number, "comment": comment},
    )
    return _stored(row)


def submit(session: Session, actor: Actor, code: str, version: int | None) -> Stored[Offer]:
    return _transition(
        session,
        actor,
        code,
        version,
        allowed=("draft", "rejected"),
        target="pending",
        action="submit",
    )


def withdraw(session: Session, actor: Actor, code: str, version: int | None) -> Stored[Offer]:
    return _transition(
        session, actor, code, version, allowed=("pending",), target="draft", action="withdraw"
    )


def approve(
    session: Session, actor: Actor, code: str, version: int | None, comment: str | None = None
) -> Stored[Offer]:
    return _transition(
        session,
        actor,
        code,
        version,
        allowed=("pending",),
        target="approved",
        action="approve",
        comment=comment,
    )


def reject(
    session: Session, actor: Actor, code: str, version: int | None, comment: str
) -> Stored[Offer]:
    if not comment.strip():
        raise Conflict("a rejection needs a comment saying what to change")
    return _transition(
        session,
        actor,
        code,
        version,
        allowed=("pending",),
        target="rejected",
        action="reject",
        comment=comment,
    )


def revisions(session: Session, code: str) -> list[dict[str, Any]]:
    row = _row(session, code)
    out = []
    for rev in session.scalars(
        select(OfferRevision).where(OfferRevision.offer_id == row.id).order_by(OfferRevision.number)
    ):
        decisions = session.scalars(
            select(Approval).where(Approval.revision_id == rev.id).order_by(Approval.id)
        ).all()
        out.append(
            {
                "revision": rev.number,
                "status": rev.status,
                "created_by": rev.created_by,
                "created_at": rev.created_at,
                "submitted_by": rev.submitted_by,
                "submitted_at": rev.submitted_at,
                "approved": rev.id == row.approved_revision_id,
                "head": rev.id == row.head_revision_id,
                "decisions": [
                    {
                        "decision": a.decision,
                        "comment": a.comment,
                        "by": a.decided_by,
                        "at": a.decided_at,
                    }
                    for a in decisions
                ],
                "spec": codec.load(rev.body),
            }
        )
    return out
