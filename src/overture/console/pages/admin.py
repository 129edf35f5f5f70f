"""Administration: operators (add, disable, change roles, reset a password), runtime API
keys per environment (the key is shown once), and the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from overture.auth import ROLES, Permission
from overture.auth.secrets import new_password
from overture.console.web import Ctx, action, number, page
from overture.design import access, audit
from overture.design.errors import ServiceError

PAGE_SIZE = 50


def _operators(
    ctx: Ctx,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    password: tuple[str, str] | None = None,
    done: str = "",
) -> Response:
    """The operators page (`password`: a name and a new password, shown this once)."""
    return ctx.render(
        "operators.html",
        status=status,
        title="Operators",
        operators=access.list_operators(ctx.session),
        roles=ROLES,
        errors=errors or {},
        values=values or {},
        password=password,
        done=done,
    )


@page(Permission.OPERATORS)
def operators(ctx: Ctx) -> Response:
    return _operators(ctx)


@action(Permission.OPERATORS)
def add_operator(ctx: Ctx) -> Response:
    name = ctx.field("name").strip()
    roles = ctx.fields("roles")
    password = ctx.field("password") or new_password()
    try:
        access.create_operator(ctx.session, ctx.actor, name, password, roles)
    except ServiceError as exc:
        ctx.session.rollback()
        return _operators(
            ctx,
            status=exc.status,
            errors={"name": exc.detail},
            values={"name": name, "roles": roles},
        )
    shown = None if ctx.field("password") else (name, password)
    return _operators(ctx, password=shown, done=f"Operator {name} added.")


@action(Permission.OPERATORS)
def update_operator(ctx: Ctx) -> Response:
    name = ctx.request.path_params["name"]
    change = ctx.field("change")
    reset = None
    try:
        if change == "roles":
            access.update_operator(ctx.session, ctx.actor, name, roles=ctx.fields("roles"))
            said = f"{name}'s roles changed."
        elif change in ("disable", "enable"):
            access.update_operator(ctx.session, ctx.actor, name, disabled=change == "disable")
            said = f"{name} {change}d" + (": their sessions ended." if change == "disable" else ".")
        elif change == "password":
            reset = new_password()
            access.update_operator(ctx.session, ctx.actor, name, password=reset)
            said = f"{name}'s password reset; their sessions ended."
        else:
            raise ServiceError(f"unknown change {change!r}")
    except ServiceError as exc:
        return ctx.refused(exc, f"{name} was not changed", "operators")
    return _operators(ctx, password=(name, reset) if reset else None, done=said)


@page(Permission.API_KEYS)
def api_keys(ctx: Ctx) -> Response:
    return _keys(ctx)


def _keys(
    ctx: Ctx,
    *,
    new: tuple[str, str] | None = None,
    error: str = "",
    status: int = 200,
    done: str = "",
) -> Response:
    return ctx.render(
        "api_keys.html",
        status=status,
        title="API keys",
        keys=access.list_api_keys(ctx.session),
        environments=access.list_environments(ctx.session),
        new=new,
        error=error,
        done=done,
    )


@action(Permission.API_KEYS)
def create_key(ctx: Ctx) -> Response:
    env, name = ctx.field("environment"), ctx.field("name").strip()
    if not name:
        return _keys(
            ctx, error="give the key a name saying who uses it (e.g. web-frontend)", status=422
        )
    try:
        made = access.create_api_key(ctx.session, ctx.actor, env, name)
    except ServiceError as exc:
        ctx.session.rollback()
        return _keys(ctx, error=exc.detail, status=exc.status)
    return _keys(ctx, new=(name, made.key), done=f"Key {name} created for {env}.")


@action(Permission.API_KEYS)
def revoke_key(ctx: Ctx) -> Response:
    key_id = number(ctx.request.path_params["id"], 0)
    try:
        access.revoke_api_key(ctx.session, ctx.actor, key_id)
    except ServiceError as exc:
        ctx.session.rollback()
        return _keys(ctx, error=exc.detail, status=exc.status)
    return _keys(ctx, done=f"Key {key_id} revoked: requests with it are refused from now on.")


_DAY = dt.timedelta(days=1)


def _day(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


@page(Permission.AUDIT)
def audit_log(ctx: Ctx) -> Response:
    offset = number(ctx.field("offset"), 0)
    since, until = _day(ctx.field("since")), _day(ctx.field("until"))
    if until is not None and len(ctx.field("until")) == 10 and until < dt.datetime.max - _DAY:
        until += _DAY  # a day includes itself
    entries, total = audit.entries(
        ctx.session,
        operator=ctx.field("operator") or None,
        action=ctx.field("action") or None,
        kind=ctx.field("kind") or None,
        key=ctx.field("key") or None,
        since=since,
        until=until,
        limit=PAGE_SIZE,
        offset=offset,
    )
    return ctx.render(
        "audit.html",
        title="Audit log",
        entries=entries,
        total=total,
        offset=offset,
        limit=PAGE_SIZE,
        filters={
            name: ctx.field(name)
            for name in ("operator", "action", "kind", "key", "since", "until")
        },
        operators=[o.name for o in access.list_operators(ctx.session)],
    )


routes = [
    Route("/operators", operators, methods=["GET"]),
    Route("/operators", add_operator, methods=["POST"]),
    Route("/operators/{name}", update_operator, methods=["POST"]),
    Route("/api-keys", api_keys, methods=["GET"]),
    Route("/api-keys", create_key, methods=["POST"]),
    Route("/api-keys/{id}/revoke", revoke_key, methods=["POST"]),
    Route("/audit", audit_log, methods=["GET"]),
]
