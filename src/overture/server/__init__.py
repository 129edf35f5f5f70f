"""The combined server: the design API, the runtime and the console, in one process.

This is the one place that puts the services together. design, runtime and batch never
import one another (docs/architecture.md); what one needs of another is handed to it
here: the design API and the console get the batch module's simulations, the runtime gets
the console (at /console, `/` redirecting to it) and the design API to serve beside it.

    create_server(node)          the ASGI application `overture serve` runs
    design_app(db)               the design API, simulations included
    people_app(db)               the console at /console, `/` redirecting to it, then the API
    asgi.create                  the factory uvicorn calls in each worker process
"""

from __future__ import annotations

import contextlib
import datetime as dt

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from overture.console import create_console
from overture.design.app import create_app as create_design
from overture.design.errors import NotFound, Unprocessable
from overture.history.deployed import NotDeployed
from overture.runtime import RuntimeNode
from overture.runtime import create_app as create_runtime
from overture.runtime.fastpath import FastPath
from overture.store import Database

__all__ = ["create_server", "design_app", "people_app", "simulate"]


def simulate(
    db: Database,
    environment: str,
    *,
    placement: str,
    n: int | None,
    limit: int | None,
    at: dt.datetime | None,
    requested_by: str,
    html: bool,
    population: str | None = None,
) -> str:
    """The batch module's simulation, its refusals said as the design API says them."""
    from overture.batch.run import BatchError
    from overture.batch.simulation import simulate_deployment

    try:
        return simulate_deployment(
            db,
            environment,
            placement=placement,
            n=n,
            limit=limit,
            at=at,
            requested_by=requested_by,
            html=html,
            population=population,
        )
    except NotDeployed as exc:
        raise NotFound(str(exc)) from exc
    except BatchError as exc:
        raise Unprocessable(str(exc)) from exc


def design_app(db: Database) -> FastAPI:
    """The design API, with everything it serves (simulations included)."""
    return create_design(db, simulate=simulate)


class GoneQuietly:
    """A client gone before its whole body came (it went away, or was too slow:
    server/protocol.py) has nobody to answer: not an error of the application, so not
    logged as one (Starlette raises ClientDisconnect where the body is read)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with contextlib.suppress(ClientDisconnect):
            await self.app(scope, receive, send)


def people_app(db: Database, *, demo: bool = False) -> Starlette:
    """What people use beside the runtime: the console at /console (`/` goes there), and
    everything else to the design API."""

    async def home(request: Request) -> Response:
        return RedirectResponse("/console/", status_code=307)

    return Starlette(
        routes=[
            Route("/", home, methods=["GET", "HEAD"]),
            Route("/console", home, methods=["GET", "HEAD"]),
            Mount("/console", app=create_console(db, simulate=simulate, demo=demo)),
            Mount("", app=design_app(db)),
        ],
        middleware=[Middleware(GoneQuietly)],
    )


def create_server(node: RuntimeNode, *, design: bool = True, demo: bool = False) -> FastPath:
    """The runtime node's application, with the console and the design API beside it when
    `design` (`demo`: the console offers demo traffic)."""
    return create_runtime(node, people_app(node.db, demo=demo) if design else None)
