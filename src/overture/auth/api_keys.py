"""Runtime API keys as the database holds them: the lookup both sides need.

The design environment creates and revokes keys (design/access.py); runtime nodes check
the keys touchpoints send (runtime/keys.py). Both read the same rows, so the lookup lives
here, below both of them.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from overture.auth.secrets import hash_secret
from overture.store.models import ApiKey


def environment_of_key(session: Session, key: str) -> str | None:
    """The environment a runtime API key opens, if it is valid (known and not revoked)."""
    record = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_secret(key)))
    if record is None or record.revoked_at is not None:
        return None
    return record.environment.name
