"""Recording who did what, with the state before and after (append-only)."""

from __future__ import annotations

from typing import Any

from pydantic_core import to_jsonable_python
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
