"""Console sessions: who is logged in, for how long, and the CSRF token of their forms.

The cookie holds a random token and its HMAC signature (a key the server makes on first
use and keeps in the database, so every worker shares it): a forged or altered cookie is
refused before the database is asked. The database holds the token's hash, so a copied
database does not hold live sessions either. A session ends after `idle` without a
request, after `lifetime` whatever happens, and on logout (revoked here, on the server).

The CSRF token is random per session and sent in every form (a hidden field) and by the
console's script (a header); a state-changing request without it is refused. The cookie is
HttpOnly and SameSite=Strict as well: a page elsewhere can neither read it nor send it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from overture.auth import hash_secret
from overture.store.models import ConsoleSession, Operator, ServerKey, utcnow

COOKIE = "overture_console"
IDLE = dt.timedelta(minutes=30)
LIFETIME = dt.timedelta(hours=12)
_TOUCH_EVERY = dt.timedelta(seconds=30)  # write last_seen_at at most this often


@dataclass(frozen=True)
class Login:
    """A session as a request sees it."""

    id: int
    operator: str
    roles: frozenset[str]
    csrf: str
    token: str


def signing_key(session: Session) -> bytes:
    """The server's cookie signing key, made on first use (every worker reads the same)."""
    row = session.get(ServerKey, "console_cookie")
    if row is None:
        row = ServerKey(name="console_cookie", value=secrets.token_hex(32))
        session.add(row)
        session.flush()
    return bytes.fromhex(row.value)


def _sign(key: bytes, token: str) -> str:
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def cookie_value(key: bytes, token: str) -> str:
    return f"{token}.{_sign(key, token)}"


def token_of(key: bytes, cookie: str | None) -> str | None:
    """The token a cookie carries, when its signature is right."""
    if not cookie or "." not in cookie or len(cookie) > 200:
        return None
    token, _, signature = cookie.rpartition(".")
    if not hmac.compare_digest(_sign(key, token), signature):
        return None
    return token


def start(session: Session, op: Operator, address: str) -> tuple[str, ConsoleSession]:
    """A new session for `op`: (the token for the cookie, the row)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = ConsoleSession(
        token_hash=hash_secret(token),
        csrf_token=secrets.token_urlsafe(32),
        operator_id=op.id,
        address=address[:64],
        created_at=now,
        last_seen_at=now,
        expires_at=now + LIFETIME,
    )
    session.add(row)
    session.flush()
    return token, row


def resume(session: Session, token: str, idle: dt.timedelta = IDLE) -> Login | None:
    """The session a token belongs to, if it is still open; its idle clock restarts."""
    row = session.scalar(
        select(ConsoleSession).where(ConsoleSession.token_hash == hash_secret(token))
    )
    now = utcnow()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    if now - row.last_seen_at > idle or row.operator.disabled:
        row.revoked_at = now
        return None
    if now - row.last_seen_at > _TOUCH_EVERY:
        row.last_seen_at = now
    return Login(
        row.id, row.operator.name, frozenset(row.operator.role_names), row.csrf_token, token
    )


def end(session: Session, token: str) -> None:
    row = session.scalar(
        select(ConsoleSession).where(ConsoleSession.token_hash == hash_secret(token))
    )
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
