"""Operators, login tokens, runtime API keys and environments.

The first start creates an administrator named `admin` with a random password, printed
once; there is no default password anywhere. Login tokens expire (12 hours by default)
and can be revoked (logout, password change, disabling the operator). API keys belong to
one environment; only their hash is stored, the key itself is shown once.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from overture.auth import ROLES, hash_password, hash_secret, new_api_key, new_token, verify_password
from overture.auth.secrets import needs_rehash, new_password
from overture.design import audit, throttle
from overture.design.catalog import Actor
from overture.design.errors import Conflict, NotFound, ServiceError
from overture.store.models import (
    AccessToken,
    ApiKey,
    ConsoleSession,
    Environment,
    Operator,
    OperatorRole,
    utcnow,
)

TOKEN_LIFETIME = dt.timedelta(hours=12)
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$"
"""An operator's name: a letter, then letters, digits, `_`, `.` or `-`; 64 at most (it is
part of URLs, audit entries and the command line)."""


class LoginFailed(ServiceError):
    status = 401
    title = "Unauthorized"


def _check_roles(roles: list[str] | set[str]) -> list[str]:
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise ServiceError(f"unknown role {unknown[0]!r}; roles: {', '.join(ROLES)}")
    if not roles:
        raise ServiceError(f"give at least one role: {', '.join(ROLES)}")
    return sorted(set(roles))


def operator(session: Session, name: str) -> Operator:
    found = session.scalar(select(Operator).where(Operator.name == name))
    if found is None:
        raise NotFound(f"no operator {name!r}")
    return found


def list_operators(session: Session) -> list[Operator]:
    return list(session.scalars(select(Operator).order_by(Operator.name)))


def create_operator(
    session: Session, actor: Actor, name: str, password: str, roles: list[str] | set[str]
) -> Operator:
    roles = _check_roles(roles)
    if not re.fullmatch(NAME_PATTERN, name):
        raise ServiceError(
            f"{name!r} is not a valid operator name: a letter, then letters, digits, "
            "'_', '.' or '-' (64 characters at most)"
        )
    if session.scalar(select(Operator).where(func.lower(Operator.name) == name.lower())):
        raise Conflict(f"an operator named {name!r} already exists")
    try:
        hashed = hash_password(password)
    except ValueError as exc:
        raise ServiceError(str(exc)) from None
    op = Operator(name=name, password_hash=hashed, roles=[OperatorRole(role=r) for r in roles])
    session.add(op)
    session.flush()
    audit.record(session, actor.name, "operators.create", "operators", name, after={"roles": roles})
    return op


def update_operator(
    session: Session,
    actor: Actor,
    name: str,
    *,
    roles: list[str] | None = None,
    disabled: bool | None = None,
    password: str | None = None,
    keep_token: str | None = None,
    keep_session: int | None = None,
) -> Operator:
    """Change an operator. Disabling them or setting their password ends their sessions,
    API tokens and console sessions alike (all but `keep_token` or `keep_session`: changing
    your own password keeps you logged in where you changed it)."""
    op = operator(session, name)
    before = {"roles": sorted(op.role_names), "disabled": op.disabled}
    losing_admin = "administrator" in op.role_names and (
        disabled or (roles is not None and "administrator" not in roles)
    )
    if losing_admin and not _other_active_administrator(session, op):
        raise Conflict(
            f"{name} is the last active administrator: make someone else administrator "
            "first, or nobody could manage operators any more"
        )
    if roles is not None:
        wanted = _check_roles(roles)
        op.roles = [r for r in op.roles if r.role in wanted] + [
            OperatorRole(role=r) for r in wanted if r not in op.role_names
        ]
    if disabled is not None:
        op.disabled = disabled
    if password is not None:
        try:
            op.password_hash = hash_password(password)
        except ValueError as exc:
            raise ServiceError(str(exc)) from None
    if disabled or password is not None:
        revoke_all(session, op, keep=keep_token, keep_session=keep_session)
    if password is not None:
        throttle.forget(session, op.name)
    session.flush()
    after = {
        "roles": sorted(op.role_names),
        "disabled": op.disabled,
        "password_changed": password is not None,
    }
    audit.record(
        session, actor.name, "operators.update", "operators", name, before=before, after=after
    )
    return op


def unlock(session: Session, actor: Actor, name: str) -> int:
    """Lift the login blocks on an operator's account, from every address (`overture users
    unlock`): for an administrator whom guessing keeps out. How many blocks were on."""
    op = operator(session, name)
    lifted = throttle.forget(session, op.name)
    audit.record(
        session, actor.name, "operators.unlock", "operators", op.name, after={"lifted": lifted}
    )
    return lifted


def ensure_administrator(session: Session) -> str | None:
    """On first start (no operator at all), create `admin` with a random password and return
    it, to be shown once; otherwise None."""
    if session.scalar(select(func.count()).select_from(Operator)):
        return None
    password = new_password()
    create_operator(session, Actor("overture"), "admin", password, ["administrator"])
    return password


@dataclass(frozen=True)
class Login:
    token: str
    expires_at: dt.datetime
    operator: str
    roles: list[str]


def check_password(session: Session, name: str, password: str, address: str = "") -> Operator:
    """The operator, when the name and password match an enabled one. Otherwise the
    failure stays counted (throttle.py) and audited (`login.failed`, and `login.blocked`
    for each block it starts), and LoginFailed is raised; Throttled while the address must
    wait. What every password check does: the API's and the console's logins and password
    changes."""
    name = name[:64]
    blocks = throttle.attempt(session, name, address)
    session.commit()  # the attempt counts, whatever happens to this request
    op = session.scalar(select(Operator).where(Operator.name == name))
    # the same answer, taking the same time, for an unknown name, a wrong password and a
    # disabled operator: the password is always checked first
    matches = verify_password(op.password_hash if op else _DUMMY_HASH, password)
    if op is None or not matches or op.disabled:
        audit.record(session, name, "login.failed", "operators", name, after={"address": address})
        for block in blocks:
            audit.record(
                session,
                name,
                "login.blocked",
                "operators",
                name,
                after={
                    "address": address,
                    "scope": block.scope,  # pair, address or account (throttle.py)
                    "failures": block.failures,
                    "seconds": block.seconds,
                    "until": block.until,
                },
            )
        session.commit()  # kept although the request fails
        raise LoginFailed("wrong name or password")
    throttle.succeeded(session, name, address)
    if needs_rehash(op.password_hash):
        op.password_hash = hash_password(password)
    return op


def login(
    session: Session,
    name: str,
    password: str,
    lifetime: dt.timedelta = TOKEN_LIFETIME,
    address: str = "",
) -> Login:
    op = check_password(session, name, password, address)
    token = new_token()
    expires = utcnow() + lifetime
    session.add(AccessToken(token_hash=hash_secret(token), operator_id=op.id, expires_at=expires))
    audit.record(session, name, "login", "operators", name)
    return Login(token, expires, op.name, sorted(op.role_names))


_DUMMY_HASH = hash_password("not a real password, only for timing")


def authenticate(session: Session, token: str) -> Operator | None:
    """The operator a bearer token belongs to, if it is valid now."""
    row = session.scalar(select(AccessToken).where(AccessToken.token_hash == hash_secret(token)))
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        return None
    if row.operator.disabled:
        return None
    return row.operator


def logout(session: Session, token: str) -> None:
    row = session.scalar(select(AccessToken).where(AccessToken.token_hash == hash_secret(token)))
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(session, row.operator.name, "logout", "operators", row.operator.name)


def revoke_all(
    session: Session, op: Operator, keep: str | None = None, keep_session: int | None = None
) -> None:
    for console in session.scalars(
        select(ConsoleSession).where(
            ConsoleSession.operator_id == op.id, ConsoleSession.revoked_at.is_(None)
        )
    ):
        if console.id != keep_session:
            console.revoked_at = utcnow()
    kept = hash_secret(keep) if keep else None
    for row in session.scalars(
        select(AccessToken).where(
            AccessToken.operator_id == op.id, AccessToken.revoked_at.is_(None)
        )
    ):
        if row.token_hash != kept:
            row.revoked_at = utcnow()


def _other_active_administrator(session: Session, op: Operator) -> bool:
    return any(
        "administrator" in other.role_names and not other.disabled and other.id != op.id
        for other in session.scalars(select(Operator))
    )


# -- environments and API keys -------------------------------------------------------------
def list_environments(session: Session) -> list[Environment]:
    return list(session.scalars(select(Environment).order_by(Environment.id)))


def create_environment(
    session: Session, actor: Actor, name: str, description: str = "", requires: str | None = None
) -> Environment:
    if session.scalar(select(Environment).where(func.lower(Environment.name) == name.lower())):
        raise Conflict(f"environment {name!r} already exists")
    if requires is not None and not session.scalar(
        select(Environment).where(Environment.name == requires)
    ):
        raise NotFound(f"no environment {requires!r} to require")
    env = Environment(name=name, description=description, requires=requires)
    session.add(env)
    session.flush()
    audit.record(
        session,
        actor.name,
        "environments.create",
        "environments",
        name,
        after={"description": description, "requires": requires},
    )
    return env


@dataclass(frozen=True)
class NewKey:
    key: str  # shown once
    record: ApiKey


def create_api_key(session: Session, actor: Actor, environment: str, name: str) -> NewKey:
    env = session.scalar(select(Environment).where(Environment.name == environment))
    if env is None:
        raise NotFound(f"no environment {environment!r}")
    key = new_api_key()
    record = ApiKey(
        name=name,
        environment_id=env.id,
        prefix=key[:12],
        key_hash=hash_secret(key),
        created_by=actor.name,
    )
    session.add(record)
    session.flush()
    audit.record(
        session,
        actor.name,
        "api_keys.create",
        "api_keys",
        str(record.id),
        after={"name": name, "environment": environment, "prefix": record.prefix},
    )
    return NewKey(key, record)


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_api_key(session: Session, actor: Actor, key_id: int) -> ApiKey:
    record = session.get(ApiKey, key_id)
    if record is None:
        raise NotFound(f"no API key {key_id}")
    if record.revoked_at is None:
        record.revoked_at = utcnow()
        audit.record(session, actor.name, "api_keys.revoke", "api_keys", str(key_id))
    return record
