"""The console's ASGI application: `create_console(db)`, mounted at /console by
overture.server (never by the runtime).

Pages are server-rendered Jinja2 (templates/), forms work without JavaScript, and the
console's own script (static/console.js) adds live checking, previews and partial updates.
Everything a page needs is served from here: its CSS and script, and the plotly.js that
the installed `plotly` package ships; nothing is fetched from elsewhere (the
Content-Security-Policy says so to the browser too).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from overture.console import sessions
from overture.console.pages import (
    account,
    admin,
    catalog,
    deploy,
    home,
    offers,
    performance,
    simulations,
)
from overture.console.pages.simulations import Simulate
from overture.store import Database

STATIC = Path(__file__).parent / "static"
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


class SecurityHeaders:
    """Every answer says: only this server's files, never in a frame, no sniffing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))  # type: ignore[call-overload]
                names = {name.lower() for name, _value in headers}
                for name, value in (
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"x-frame-options", b"DENY"),
                ):
                    if name not in names:
                        headers.append((name, value))
                if not any(n == b"cache-control" for n in names):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)  # type: ignore[arg-type]


def _plotly_js() -> Path | None:
    try:
        import plotly
    except ImportError:  # pragma: no cover - plotly is a dependency
        return None
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    return path if path.exists() else None


async def plotly_js(request: Request) -> Response:
    path = _plotly_js()
    if path is None:
        return Response("plotly is not installed", status_code=404)
    return FileResponse(
        path, media_type="text/javascript", headers={"cache-control": "max-age=86400"}
    )


def create_console(
    db: Database,
    *,
    simulate: Simulate | None = None,
    idle: dt.timedelta = sessions.IDLE,
    secure_cookies: bool = False,
    demo: bool = False,
) -> Starlette:
    """The console on `db`. `simulate` runs simulations (overture.server gives it the batch
    module's); `secure_cookies` marks the cookies Secure (behind HTTPS)."""
    routes: list[BaseRoute] = [
        *account.routes,
        *home.routes,
        *catalog.routes,
        *offers.routes,
        *deploy.routes,
        *simulations.routes,
        *performance.routes,
        *admin.routes,
        Route("/static/plotly.min.js", plotly_js, methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])
    app.state.db = db
    app.state.simulate = simulate
    app.state.idle = idle
    app.state.secure_cookies = secure_cookies
    app.state.demo = demo  # a demo server: the console can drive demo traffic
    return app
