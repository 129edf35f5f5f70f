"""Recording who did what, with the state before and after (append-only)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from overture.store.models import AuditEntry


def record(
    session: Session,
    actor: str,
    action: str,
    kind: str = "",
    key: str = "",
    *,
    before: Any = None,
    after: Any = None,
) -> None:
    session.add(
        AuditEntry(
            operator=actor,
            action=action,
            kind=kind,
            key=key,
            before=None if before is None else to_jsonable_python(before),
            after=None if after is None else to_jsonable_python(after),
        )
    )


def entries(
    session: Session,
    *,
    operator: str | None = None,
    action: str | None = None,
    kind: str | None = None,
    key: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[AuditEntry], int]:
    """The audit log, newest first, filtered (each filter an exact match; `action` also
    matches a prefix ending in a dot: `offers.` gives every offer action), and its total."""
    stmt = select(AuditEntry)
    for column, value in (
        (AuditEntry.operator, operator),
        (AuditEntry.kind, kind),
        (AuditEntry.key, key),
    ):
        if value:
            stmt = stmt.where(column == value)
    if action:
        stmt = stmt.where(
            AuditEntry.action.startswith(action, autoescape=True)
            if action.endswith(".")
            else AuditEntry.action == action
        )
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEntry.at < until)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit).offset(offset))
    return list(rows), total
