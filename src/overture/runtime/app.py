"""The ASGI application of a node: the runtime, and the design API beside it when embedded.

    create_app(node)                  a runtime-only node
    create_app(node, design=fastapi)  `overture serve`: both, one process, one port

The hot routes (decisions, events, Interact's servlet) are served straight from ASGI
(fastpath.py); the runtime's other routes are plain Starlette, and everything else falls
through to the people's app (console and design API). Starting the app starts the node
(deployments loaded, recorder running); stopping it writes everything accepted before the
process exits.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from http import HTTPStatus
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from overture.runtime import api, openapi, servlet
from overture.runtime.fastpath import FastPath
from overture.runtime.node import RuntimeNode

_encode = msgspec.json.Encoder().encode


def create_app(node: RuntimeNode, design: Any | None = None) -> FastPath:
    spec = _encode(openapi.document())

    async def healthz(request: Request) -> Response:
        """Alive: the process answers (says nothing about the database)."""
        return api.response(api.json({"status": "ok"}))

    async def readyz(request: Request) -> Response:
        """Ready: started, every environment's current deployment is the one serving (an
        environment with no deployment yet does not hold the node back), and the database
        answers; with each dependency's state (runtime/health.py)."""
        ready, body = node.health.readiness()
        return api.response(api.json(body, 200 if ready else 503))

    async def metrics(request: Request) -> Response:
        for name in node.plans.status:
            live = node.plans.get(name)
            if live is not None:
                node.metrics.deployment.labels(name).set(live.deployment)
        held = node.sessions.count()
        if held is not None:
            node.metrics.sessions_held.set(held)
        node.health.export()
        return Response(node.metrics.render(), media_type="text/plain; version=0.0.4")

    async def spec_route(request: Request) -> Response:
        return Response(spec, media_type="application/json")

    # The hot routes, built once: served by the fast path, and by Starlette too for its
    # answers to other methods (405 with Allow) and for the routes' listing.
    hot = {**api.hot(node), **servlet.hot(node)}
    routes: list[BaseRoute] = [
        *(Route(path, api.starlette_route(h), methods=["POST"]) for path, h in hot.items()),
        *api.routes(node),
        Route("/runtime/openapi.json", spec_route, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await node.start()
        try:
            yield
        finally:
            await node.stop()

    async def http_error(request: Request, exc: Exception) -> Response:
        """Starlette's own answers (no such path, method not allowed) as problem+json."""
        assert isinstance(exc, HTTPException)
        answer = api.response(
            api.problem(exc.status_code, HTTPStatus(exc.status_code).phrase, exc.detail)
        )
        answer.headers.update(exc.headers or {})
        return answer

    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error}
    )
    app.state.node = node
    if design is not None:
        # what none of the runtime's routes matches, not even by path alone (those answer
        # 405 with Allow, as on a runtime-only node), goes on to the design API and console
        app.router.default = _own_router(design)
    return FastPath(app, hot)


def _own_router(app: Any) -> Any:
    """`app` as a fallback: Starlette's url_for looks names up in scope["router"], which the
    first router sets; without it, the console's url_for('static') found no such route here
    (a 500 on every console page). Each fallback request names its own router instead."""

    async def call(scope: Any, receive: Any, send: Any) -> None:
        inner = dict(scope)
        inner.pop("router", None)
        await app(inner, receive, send)

    return call
