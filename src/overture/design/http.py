"""HTTP plumbing for the design API: problems (RFC 9457), authentication, permissions,
ETags, and the body-size limit."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from overture.auth import PERMISSIONS, ROLES, Permission, allowed
from overture.catalog.validate import explain_error
from overture.design import access
from overture.design.catalog import ANY_VERSION, Actor
from overture.design.errors import ServiceError
from overture.design.schemas import INT_MAX
from overture.store import Database

log = logging.getLogger("overture.design")
PROBLEM = "application/problem+json"


def problem(
    status: int,
    title: str,
    detail: str,
    request: Request | None = None,
    *,
    slug: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body = {
        "type": f"urn:overture:problem:{slug}" if slug else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        **extensions,
    }
    if request is not None:
        body["instance"] = request.url.path
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _slug(title: str) -> str:
    return title.lower().replace(" ", "-")


async def service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    headers = {}
    if "current_version" in exc.extensions:
        headers["ETag"] = etag(exc.extensions["current_version"])
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if "retry_after" in exc.extensions:
        headers["Retry-After"] = str(exc.extensions["retry_after"])
    return problem(
        exc.status,
        exc.title,
        exc.detail,
        request,
        slug=_slug(exc.title),
        headers=headers,
        **exc.extensions,
    )


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for err in exc.errors():
        message, hint = explain_error(err)
        where = ".".join(str(p) for p in err.get("loc", ()))
        errors.append({"where": where, "message": message, "hint": hint, "severity": "error"})
    return problem(
        422,
        "Invalid request",
        f"the request has {len(errors)} problem(s)",
        request,
        slug="invalid-request",
        errors=errors,
    )


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 405:
        methods = allowed_methods(request.app.routes, request.url.path)
        return problem(
            405,
            "Method not allowed",
            f"{request.method} is not supported here; use {', '.join(methods)}",
            request,
            headers={"Allow": ", ".join(methods)},
        )
    return problem(
        exc.status_code,
        _TITLES.get(exc.status_code, "Error"),
        detail,
        request,
        headers=dict(exc.headers or {}),
    )


async def integrity_error(request: Request, exc: Exception) -> JSONResponse:
    """A uniqueness or reference race the service did not foresee: the database kept its
    rules and refused the write; the operator can read again and retry."""
    log.warning("integrity error on %s %s: %s", request.method, request.url.path, exc)
    return problem(
        409,
        "Conflict",
        "this conflicts with a change made at the same moment; nothing was applied: "
        "read again and retry",
        request,
        slug="conflict",
    )


async def stale_error(request: Request, exc: Exception) -> JSONResponse:
    """A versioned row changed under a write the service did not guard itself."""
    return problem(
        409,
        "Stale version",
        "what you changed was changed by someone else meanwhile; nothing was applied: "
        "read again and retry",
        request,
        slug="stale-version",
    )


async def data_error(request: Request, exc: Exception) -> JSONResponse:
    """A value the database refused to store (a NUL in text, a number out of range): the
    checks before should have caught it; say so rather than 500."""
    log.warning("data error on %s %s: %s", request.method, request.url.path, exc)
    return problem(
        400,
        "Bad request",
        "a value in the request cannot be stored (text with a NUL character, or a number "
        "out of range); nothing was applied",
        request,
    )


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return problem(
        500,
        "Internal server error",
        "something went wrong on our side; the request was not applied (see the server log)",
        request,
    )


def allowed_methods(routes: list[Any], path: str) -> list[str]:
    """Every method some route serves at `path` (routers are included lazily, so walk them)."""
    methods: set[str] = set()
    for route in routes:
        inner = getattr(getattr(route, "original_router", None), "routes", None)
        if inner is not None:
            methods.update(allowed_methods(inner, path))
        elif getattr(route, "path_regex", None) is not None and route.path_regex.match(path):
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)


_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Invalid request",
}


def checked_query(request: Request) -> None:
    """Refuse a query parameter the operation does not take (a misspelt `limt` would
    otherwise be ignored without a word) or one given twice (only `filter` repeats): either
    way the answer would be to another question than the one asked."""
    known = _query_names(request.scope.get("route"))
    seen: set[str] = set()
    for name, value in request.query_params.multi_items():
        if "\x00" in value:
            raise ServiceError(f"query parameter {name!r} holds a NUL character (%00)")
        if name not in known:
            takes = f"it takes {', '.join(sorted(known))}" if known else "it takes none"
            raise ServiceError(f"unknown query parameter {name!r}: {takes}")
        if name in seen and name not in REPEATABLE:
            raise ServiceError(f"query parameter {name!r} is given more than once; give it once")
        seen.add(name)
    if any("\x00" in v for v in request.path_params.values()):
        raise ServiceError("the path holds a NUL character (%00)")


def _query_names(route: Any) -> frozenset[str]:
    if not isinstance(route, APIRoute):
        return frozenset()
    names: frozenset[str] | None = getattr(route, "_query_names", None)
    if names is None:  # once per route (routes are not hashable: kept on the route itself)
        names = frozenset(_declared(route.dependant))
        route._query_names = names  # type: ignore[attr-defined]
    return names


def _declared(dependant: Any) -> set[str]:
    """The query parameters an operation and its dependencies declare."""
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _declared(sub)
    return names


REPEATABLE = frozenset({"filter"})


# -- ETags ---------------------------------------------------------------------------------
def etag(version: int) -> str:
    return f'"{version}"'


PathNumber = Annotated[int, Path(ge=1, le=INT_MAX, description="A positive whole number")]
"""An id or a deployment number in a path."""


def if_match(request: Request) -> int | None:
    """The version an update is based on, from If-Match ("3" or W/"3"); None if absent."""
    header = request.headers.get("if-match")
    if header is None:
        return None
    if header.strip() == "*":  # RFC 9110: whatever the current version is
        return ANY_VERSION
    text = header.strip().removeprefix("W/").strip('"')
    if not text.isdigit() or len(text) > 18:
        raise ServiceError(f'If-Match must be the ETag you read, such as "3"; got {header!r}')
    return int(text)


# -- databases, authentication and permissions ------------------------------------------------
def database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


_bearer = HTTPBearer(auto_error=False, description="A token from POST /v1/design/auth/login")


def current_actor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    if credentials is None:
        raise access.LoginFailed(
            "log in first: POST /v1/design/auth/login, then send Authorization: Bearer <token>"
        )
    with database(request).session() as session:
        op = access.authenticate(session, credentials.credentials)
        if op is None:
            raise access.LoginFailed("the token is unknown, expired or revoked: log in again")
        actor = Actor(op.name, frozenset(op.role_names))
    request.state.token = credentials.credentials
    return actor


_REQUIREMENTS: dict[Permission, Callable[..., Actor]] = {}


def require(permission: Permission) -> Callable[..., Actor]:
    """A dependency giving the acting operator, refusing (403) those without `permission`.
    The function carries `.permission`, which the role-matrix test reads."""
    if permission not in _REQUIREMENTS:

        def dependency(actor: Annotated[Actor, Depends(current_actor)]) -> Actor:
            if not allowed(actor.roles, permission):
                from overture.design.errors import Forbidden

                holders = " or ".join(r for r in ROLES if r in PERMISSIONS[permission])
                raise Forbidden(
                    f"not allowed: {actor.name} ({', '.join(sorted(actor.roles))}) may not "
                    f"do this; it takes the {permission} permission, which the {holders} "
                    "role has"
                )
            return actor

        dependency.permission = permission  # type: ignore[attr-defined]
        _REQUIREMENTS[permission] = dependency
    return _REQUIREMENTS[permission]


# -- body size -------------------------------------------------------------------------------
class BodyLimit:
    """Refuse request bodies over `limit` bytes with 413: by Content-Length, or while
    reading (a chunked body). Design bodies are small, so the body is read first and then
    replayed to the application, which never sees a partial one."""

    def __init__(self, app: ASGIApp, limit: int, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.larger = larger or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope["path"], self.limit)
        declared = dict(scope.get("headers") or {}).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(scope, receive, send, limit)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(scope, receive, send, limit)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem(
            413, "Payload too large", f"request bodies are limited to {limit:,} bytes here"
        )
        await response(scope, receive, send)


Handler = Callable[[Request, Exception], Awaitable[JSONResponse]]
