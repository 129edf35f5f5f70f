"""The ASGI application of a node: the runtime, and the design API beside it when embedded.

    create_app(node)                  a runtime-only node
    create_app(node, design=fastapi)  `overture serve`: both, one process, one port

The runtime's routes come first and are plain Starlette; everything else falls through to
the design API (FastAPI). Starting the app starts the node (deployments loaded, recorder
running); stopping it writes everything accepted before the process exits.
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
from starlette.routing import BaseRoute, Mount, Route

from overture.runtime import api, openapi, servlet
from overture.runtime.node import RuntimeNode

_encode = msgspec.json.Encoder().encode


def create_app(node: RuntimeNode, design: Any | None = None) -> Starlette:
    spec = _encode(openapi.document())

    async def healthz(request: Request) -> Response:
        """Alive: the process answers (says nothing about the database)."""
        return api.json({"status": "ok"})

    async def readyz(request: Request) -> Response:
        """Ready: started, and every environment's current deployment is the one serving
        (an environment with no deployment yet does not hold the node back)."""
        envs = {}
        ready = node.started
        for name, status in node.plans.status.items():
            envs[name] = {
                "deployment": status.deployment,
                "latest": status.latest,
                "error": status.error,
            }
            ready = ready and status.deployment == status.latest
        return api.json({"ready": ready, "environments": envs}, 200 if ready else 503)

    async def metrics(request: Request) -> Response:
        for name in node.plans.status:
            live = node.plans.get(name)
            if live is not None:
                node.metrics.deployment.labels(name).set(live.deployment)
        held = node.sessions.count()
        if held is not None:
            node.metrics.sessions_held.set(held)
        return Response(node.metrics.render(), media_type="text/plain; version=0.0.4")

    async def spec_route(request: Request) -> Response:
        return Response(spec, media_type="application/json")

    routes: list[BaseRoute] = [
        *api.routes(node),
        *servlet.routes(node),
        Route("/runtime/openapi.json", spec_route, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    if design is not None:
        routes.append(Mount("", app=design))

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
        answer = api.problem(exc.status_code, HTTPStatus(exc.status_code).phrase, exc.detail)
        answer.headers.update(exc.headers or {})
        return answer

    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error}
    )
    app.state.node = node
    return app
