"""Simulations: an environment's current deployment run over its stored profiles.

Offer managers and delivery managers ask "where would each offer go?" before a campaign
or a deployment: the allocation runs as a batch does, records nothing, and the answer is
the report's figures (JSON) or the report itself (HTML). It runs while the request waits:
stored profiles are what the runtime looks up, and a simulation of a hundred thousand of
them takes seconds (`limit` bounds it). Bigger populations: `overture simulate`.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from overture.auth import Permission
from overture.design.catalog import Actor
from overture.design.errors import NotFound, Unprocessable
from overture.design.http import database, require
from overture.design.schemas import SimulationIn

router = APIRouter(prefix="/v1/design/environments", tags=["simulations"])
Simulator = Annotated[Actor, Depends(require(Permission.SIMULATE))]


@router.post(
    "/{name}/simulations",
    summary="Simulate the current deployment over the stored profiles",
    responses={200: {"content": {"text/html": {}, "application/json": {}}}},
)
def simulate(request: Request, name: str, body: SimulationIn, actor: Simulator) -> Response:
    from overture.batch.report import figures_json, render_report
    from overture.batch.run import BatchError, BatchSpec, run_batch
    from overture.runtime.counters import RebuildError, load_live

    db = database(request)
    try:
        live = load_live(db, name)
    except RebuildError as exc:
        raise NotFound(str(exc)) from exc
    spec = BatchSpec(
        placement=body.placement,
        n=body.n,
        stored_profiles=True,
        limit=body.limit,
        simulate=True,
        now=body.at.replace(tzinfo=None) if body.at else None,
    )
    meta: dict[str, Any] = {
        "environment": live.environment,
        "deployment": live.deployment,
        "requested_by": actor.name,
    }
    try:
        result = run_batch(spec, live.plan, live=live, db=db, meta=meta)
    except BatchError as exc:
        raise Unprocessable(str(exc)) from exc
    if body.format == "html":
        return Response(render_report(result.figures), media_type="text/html")
    return Response(figures_json(result.figures), media_type="application/json")
