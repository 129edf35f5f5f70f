"""Runtime API keys: which environment a request may use.

Keys are created in the design API (`overture keys add --env production`), shown once and
stored as SHA-256 hashes. A node checks a key against the database the first time it sees
it and then every `recheck_seconds`, so a revoked key stops working within that time
without a database read per request. While the database does not answer, a key the node
checked before keeps the answer it had; a key it never saw is answered 503 (retry).

A key travels as `Authorization: Bearer ovk_...`, as `X-API-Key: ovk_...`, or, for
touchpoints written for Interact, as the `m_user_password` header (Interact's own
credentials header; `m_user_name` is ignored).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from overture.auth.api_keys import environment_of_key
from overture.auth.secrets import hash_secret
from overture.history.failures import DatabaseDown, DependencyState, database_down
from overture.store import Database


class KeyRefused(PermissionError):
    """No key, or a key that opens nothing."""


def key_from_headers(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization")
    if auth is not None:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return headers.get("x-api-key") or headers.get("m_user_password")


class ApiKeys:
    def __init__(
        self,
        db: Database,
        recheck_seconds: float = 30.0,
        max_cached: int = 10_000,
        state: DependencyState | None = None,
    ):
        self.db = db
        self.state = state or DependencyState("database")
        self.recheck = recheck_seconds
        self.max_cached = max_cached
        self._known: dict[str, tuple[float, str | None]] = {}  # hash -> (checked, environment)

    async def environment(self, key: str | None) -> str:
        """The environment `key` opens; KeyRefused saying what is wrong otherwise."""
        if not key:
            raise KeyRefused(
                "a runtime API key is required: send it as 'Authorization: Bearer ovk_...' "
                "or 'X-API-Key'; create one with overture keys add --env ENVIRONMENT"
            )
        digest = hash_secret(key)
        now = time.monotonic()
        known = self._known.get(digest)
        if known is None or now - known[0] > self.recheck:
            try:
                if not self.state.up and not self.state.may_try():
                    raise DatabaseDown("known down")
                env = await asyncio.to_thread(self._lookup, key)
            except Exception as exc:
                if not database_down(exc):
                    raise
                if not isinstance(exc, DatabaseDown):
                    self.state.failed(exc)
                if known is not None:
                    return _opened(known[1])  # checked before: as it was then
                raise DatabaseDown(
                    "the database is not answering, so this API key cannot be checked; retry "
                    "in a few seconds"
                ) from exc
            self.state.answered()
            if len(self._known) >= self.max_cached:
                self._known.clear()
            known = self._known[digest] = (now, env)
        return _opened(known[1])

    def _lookup(self, key: str) -> str | None:
        with self.db.session() as s:
            return environment_of_key(s, key)


def _opened(environment: str | None) -> str:
    if environment is None:
        raise KeyRefused("this API key is not valid (unknown or revoked)")
    return environment
