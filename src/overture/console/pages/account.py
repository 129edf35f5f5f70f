"""Logging in and out, and changing one's own password."""

from __future__ import annotations

import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from overture.console import sessions
from overture.console.web import Ctx, action, page, secure_cookies, templates
from overture.design import access, audit
from overture.design.errors import ServiceError
from overture.design.throttle import Throttled
from overture.store import Database

LOGIN_CSRF = "overture_login_csrf"


def _safe_next(request: Request, target: str) -> str:
    """Where to go after logging in: a console path only (never another site)."""
    root = str(request.scope.get("root_path", ""))
    if target.startswith(root + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return root + "/"


def _login_page(
    request: Request, *, error: str = "", name: str = "", status: int = 200
) -> Response:
    token = secrets.token_urlsafe(24)
    response = templates.TemplateResponse(
        request,
        "login.html",
        {
            "ctx": None,
            "login": None,
            "title": "Log in",
            "error": error,
            "name": name,
            "csrf": token,
            "next": request.query_params.get("next", ""),
            "done": request.query_params.get("done", "")[:200],
        },
        status_code=status,
    )
    _cookie(request, response, LOGIN_CSRF, token, max_age=3600)
    return response


def _cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    root = request.scope.get("root_path", "") or "/"
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=root,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
    )


async def login_form(request: Request) -> Response:
    return _login_page(request)


async def login(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=10)
    name = str(form.get("name") or "")
    password = str(form.get("password") or "")
    sent = str(form.get("csrf") or "")
    expected = request.cookies.get(LOGIN_CSRF, "")
    if not sent or not expected or not secrets.compare_digest(sent, expected):
        return _login_page(
            request,
            error="This login form expired or came from elsewhere: try again.",
            name=name,
            status=403,
        )
    address = request.client.host if request.client else ""
    db: Database = request.app.state.db

    def check() -> tuple[str, str] | Response:
        with db.session() as session:
            try:
                op = access.check_password(session, name, password, address)
            except Throttled as exc:
                response = _login_page(request, error=exc.detail, name=name, status=429)
                response.headers["Retry-After"] = str(exc.retry_after)
                return response
            except ServiceError as exc:
                return _login_page(request, error=exc.detail, name=name, status=401)
            token, _row = sessions.start(session, op, address)
            audit.record(session, op.name, "console.login", "operators", op.name)
            return token, sessions.cookie_value(sessions.signing_key(session), token)

    result = await run_in_threadpool(check)
    if isinstance(result, Response):
        return result
    _token, value = result
    target = _safe_next(request, str(form.get("next") or ""))
    response = RedirectResponse(target, status_code=303)
    _cookie(
        request, response, sessions.COOKIE, value, max_age=int(sessions.LIFETIME.total_seconds())
    )
    response.delete_cookie(LOGIN_CSRF, path=request.scope.get("root_path", "") or "/")
    return response


@action(None)
def logout(ctx: Ctx) -> Response:
    sessions.end(ctx.session, ctx.login.token)
    audit.record(ctx.session, ctx.login.operator, "console.logout", "operators", ctx.login.operator)
    response = ctx.redirect("login", done="You are logged out.")
    response.delete_cookie(sessions.COOKIE, path=ctx.request.scope.get("root_path", "") or "/")
    return response


@page(None)
def password_form(ctx: Ctx) -> Response:
    return ctx.render("password.html", title="Change your password", errors={})


@action(None)
def change_password(ctx: Ctx) -> Response:
    current, new, again = ctx.field("current"), ctx.field("new"), ctx.field("again")
    errors: dict[str, str] = {}
    address = ctx.request.client.host if ctx.request.client else ""
    try:  # the current password is checked as a login is: throttled and audited
        access.check_password(ctx.session, ctx.login.operator, current, address)
    except ServiceError as exc:
        errors["current"] = "this is not your current password" if exc.status == 401 else exc.detail
    if new != again:
        errors["again"] = "the two new passwords differ"
    if not errors:
        try:
            access.update_operator(
                ctx.session,
                ctx.actor,
                ctx.login.operator,
                password=new,
                keep_session=ctx.login.id,
            )
        except ServiceError as exc:
            errors["new"] = exc.detail
    if errors:
        ctx.session.rollback()
        return ctx.render("password.html", status=422, title="Change your password", errors=errors)
    return ctx.redirect("", done="Your password is changed; your other sessions ended.")


routes = [
    Route("/login", login_form, methods=["GET"], name="login"),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"], name="logout"),
    Route("/password", password_form, methods=["GET"], name="password"),
    Route("/password", change_password, methods=["POST"]),
]
