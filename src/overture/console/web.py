"""What every console page shares: the logged-in operator, the role check, CSRF, rendering.

A page is a plain function of a `Ctx` that returns a response; `page(permission)` wraps it
for GET and `action(permission)` for POST. The wrapper, in a worker thread (the services
are synchronous SQLAlchemy): opens one database transaction for the request, finds the
session from the cookie (or sends the browser to the login page), checks the operator's
role against the permission (403 and nothing done otherwise), and for a POST checks the
CSRF token (403 and nothing done otherwise). The transaction commits when the function
returns and rolls back when it raises, so a refused action changes nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from markupsafe import Markup
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from overture.auth import Permission, allowed
from overture.console import sessions
from overture.design.catalog import Actor
from overture.design.errors import ServiceError
from overture.store import Database

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
ENV_COOKIE = "overture_env"


class Refused(Exception):
    """The operator may not do this (403), or the form is forged (no CSRF token)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass
class Ctx:
    """One request as a page sees it."""

    request: Request
    db: Database
    session: Session
    login: sessions.Login
    form: FormData | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def actor(self) -> Actor:
        return Actor(self.login.operator, self.login.roles)

    def can(self, permission: Permission) -> bool:
        return allowed(self.login.roles, permission)

    def need(self, permission: Permission) -> None:
        if not self.can(permission):
            raise Refused(
                f"your role ({', '.join(sorted(self.login.roles))}) may not do this: it needs "
                f"{permission.value}; ask an administrator"
            )

    def field(self, name: str, default: str = "") -> str:
        """A form field (or a query parameter on a GET), as text."""
        if self.form is not None and name in self.form:
            value = self.form.get(name)
            return value if isinstance(value, str) else default
        return self.request.query_params.get(name, default)

    def fields(self, name: str) -> list[str]:
        if self.form is not None:
            return [v for v in self.form.getlist(name) if isinstance(v, str)]
        return self.request.query_params.getlist(name)

    def url(self, path: str, **query: Any) -> str:
        """A console URL (path relative to the console's root), with a query string."""
        root = self.request.scope.get("root_path", "")
        base = f"{root}/{path.lstrip('/')}"
        params = {k: v for k, v in query.items() if v not in (None, "")}
        return f"{base}?{urlencode(params, doseq=True)}" if params else base

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        values.setdefault("title", "")
        response = templates.TemplateResponse(
            self.request,
            template,
            {"ctx": self, "login": self.login, "Permission": Permission, **values},
            status_code=status,
        )
        response.headers.update(self.headers)
        return response

    def not_found(self, detail: str) -> Response:
        return self.render("error.html", status=404, title="Not found", message=detail)

    def refused(self, exc: ServiceError, title: str, back: str) -> Response:
        """A service's refusal as a page: why, every located problem, the way back (the
        transaction rolled back first: nothing of the action stays)."""
        self.session.rollback()
        return self.render(
            "error.html",
            status=exc.status,
            title=title,
            message=exc.detail,
            problems=problems(exc),
            back=self.url(back),
        )

    def redirect(self, path: str, *, done: str | None = None, **query: Any) -> Response:
        """See-other to a console page, with a message saying what was done."""
        return RedirectResponse(self.url(path, done=done, **query), status_code=303)

    @functools.cached_property
    def environment(self) -> str:
        """The environment being looked at: the one chosen last (kept in a cookie) if it
        exists, else the first."""
        from sqlalchemy import select

        from overture.store.models import Environment

        names = list(self.session.scalars(select(Environment.name).order_by(Environment.id)))
        for chosen in (self.request.query_params.get("env"), self.request.cookies.get(ENV_COOKIE)):
            if chosen in names:
                return str(chosen)
        return names[0] if names else ""

    def choose_environment(self, name: str) -> None:
        """Remember the environment looked at (a cookie of the console's, for the header)."""
        root = self.request.scope.get("root_path", "") or "/"
        secure = "; Secure" if secure_cookies(self.request) else ""
        self.headers["set-cookie"] = (
            f"{ENV_COOKIE}={name}; Path={root}; HttpOnly; SameSite=Strict{secure}"
        )


Handler = Callable[[Ctx], Response]


def problems(exc: ServiceError) -> list[str]:
    """The located problems a refusal carries (an invalid catalog's), one line each."""
    return [f"{e['where']}: {e['message']}" for e in exc.extensions.get("errors", [])]


def secure_cookies(request: Request) -> bool:
    """Cookies are Secure when the console is told so, or reached over HTTPS (uvicorn's
    --proxy-headers takes the scheme a proxy forwards)."""
    return bool(request.app.state.secure_cookies) or request.url.scheme == "https"


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _login_redirect(request: Request) -> Response:
    if _wants_json(request):
        return JSONResponse(
            {"detail": "your session ended: log in again"},
            status_code=401,
        )
    root = request.scope.get("root_path", "")
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{root}/login?next={quote(target)}", status_code=303)


def _resume(request: Request, session: Session) -> sessions.Login | None:
    key = sessions.signing_key(session)
    token = sessions.token_of(key, request.cookies.get(sessions.COOKIE))
    if token is None:
        return None
    idle: dt.timedelta = request.app.state.idle
    return sessions.resume(session, token, idle)


def _run(
    request: Request, form: FormData | None, handler: Handler, permission: Permission | None
) -> Response:
    db: Database = request.app.state.db
    with db.session() as session:
        login = _resume(request, session)
        if login is None:
            session.commit()  # an idle session's end is kept
            return _login_redirect(request)
        ctx = Ctx(request, db, session, login, form)
        try:
            if form is not None:
                token = request.headers.get("x-csrf-token") or form.get("csrf")
                if not isinstance(token, str) or not hmac.compare_digest(
                    token.encode(), login.csrf.encode()
                ):
                    raise Refused(
                        "this form is not one the console gave you (its CSRF token is missing "
                        "or from another session): reload the page and try again"
                    )
            if permission is not None:
                ctx.need(permission)
            return handler(ctx)
        except Refused as exc:
            session.rollback()
            if _wants_json(request):
                return JSONResponse({"detail": exc.detail}, status_code=403)
            return ctx.render("error.html", status=403, title="Not allowed", message=exc.detail)


def page(permission: Permission | None = Permission.READ) -> Callable[[Handler], Any]:
    """A GET page for operators holding `permission`."""

    def wrap(handler: Handler) -> Any:
        async def endpoint(request: Request) -> Response:
            return await run_in_threadpool(_run, request, None, handler, permission)

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        return endpoint

    return wrap


FORM_LIMIT = 2 << 20  # a form: 2 MiB
UPLOAD_LIMIT = 210 << 20  # a form with a population file (pages/simulations.py)


def _logged_in(request: Request) -> bool:
    db: Database = request.app.state.db
    with db.session() as session:
        return _resume(request, session) is not None


def action(permission: Permission | None, *, limit: int = FORM_LIMIT) -> Callable[[Handler], Any]:
    """A POST for operators holding `permission`, with the session's CSRF token. The body
    is read only for a logged-in operator, and only up to `limit` bytes."""

    def wrap(handler: Handler) -> Any:
        async def endpoint(request: Request) -> Response:
            if not await run_in_threadpool(_logged_in, request):
                return _login_redirect(request)
            length = request.headers.get("content-length", "")
            if not length.isdigit() or int(length) > limit:
                return Response(
                    f"send a form of at most {limit >> 20} MiB, with its Content-Length",
                    status_code=413 if length.isdigit() else 411,
                )
            form = await request.form(max_files=2, max_fields=2000)
            try:
                return await run_in_threadpool(_run, request, form, handler, permission)
            finally:
                await form.close()

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        return endpoint

    return wrap


# -- reading what a form says ------------------------------------------------------------------
LARGEST = 2**31 - 1  # versions, numbers, offsets: what every database's INTEGER holds


def number(text: str, default: int) -> int:
    """A whole number from a form or a URL, between 0 and LARGEST (else `default`)."""
    try:
        value = int(text.strip())
    except ValueError:
        return default
    return min(max(0, value), LARGEST)


def json_object(text: str, what: str) -> dict[str, Any]:
    """A JSON object typed into a form (empty: {}); ValueError saying what is wrong."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        where = (
            f": {exc.msg} (line {exc.lineno}, column {exc.colno})"
            if isinstance(exc, json.JSONDecodeError)
            else ": nested too deep"
        )
        raise ValueError(f"{what} is not JSON{where}") from None
    if not isinstance(value, dict):
        raise ValueError(f'{what} must be a JSON object, like {{"age": 30}}')
    return value


# -- template helpers --------------------------------------------------------------------------
def as_json(value: Any) -> Markup:
    """JSON for a <script type=application/json> block: `<` escaped, so no text in it can
    close the block."""
    text = json.dumps(value, default=str).replace("<", "\\u003c").replace(">", "\\u003e")
    return Markup(text.replace("&", "\\u0026"))


def when(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return value.strftime("%Y-%m-%d %H:%M UTC")


def pretty(value: Any) -> str:
    if isinstance(value, Mapping | list):
        return json.dumps(value, indent=1, default=str, ensure_ascii=False)
    return "" if value is None else str(value)


templates.env.filters["when"] = when
templates.env.filters["pretty"] = pretty
templates.env.filters["as_json"] = as_json
templates.env.globals["static_version"] = "1"
