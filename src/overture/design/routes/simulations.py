"""Simulations: an environment's current deployment run over its stored profiles.

It runs while the request waits: stored profiles are what the runtime looks up, and a
simulation of a hundred thousand of them takes seconds (`limit` bounds it). Bigger
populations: `overture simulate`. The run itself is the batch module's
(batch/simulation.py); the design application is given it when it is built
(overture.server), since design may not import batch (docs/architecture.md).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Protocol

from fastapi import APIRouter, Depends, Request, Response

from overture.auth import Permission
from overture.design.catalog import Actor
from overture.design.errors import ServiceError
from overture.design.http import database, require
from overture.design.schemas import SimulationIn
from overture.store import Database

router = APIRouter(prefix="/v1/design/environments", tags=["simulations"])
Simulator = Annotated[Actor, Depends(require(Permission.SIMULATE))]


class Simulate(Protocol):
    """Runs a simulation: the figures as JSON, or the HTML report; a ServiceError (NotFound,
    Unprocessable) saying why when it cannot."""

    def __call__(
        self,
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
    ) -> str: ...


class NoSimulations(ServiceError):
    status = 501
    title = "Not implemented here"


@router.post(
    "/{name}/simulations",
    summary="Simulate the current deployment over the stored profiles",
    responses={200: {"content": {"text/html": {}, "application/json": {}}}},
)
def simulate(request: Request, name: str, body: SimulationIn, actor: Simulator) -> Response:
    run: Simulate | None = getattr(request.app.state, "simulate", None)
    if run is None:
        raise NoSimulations(
            "this server was built without the batch module, which runs simulations; "
            "serve with overture serve, or run overture simulate"
        )
    html = body.format == "html"
    text = run(
        database(request),
        name,
        placement=body.placement,
        n=body.n,
        limit=body.limit,
        at=body.at,
        requested_by=actor.name,
        html=html,
    )
    return Response(text, media_type="text/html" if html else "application/json")
