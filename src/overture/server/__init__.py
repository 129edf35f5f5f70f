"""The combined server: the design API, the runtime and (next) the console, in one process.

This is the one place that puts the services together. design, runtime and batch never
import one another (docs/architecture.md); what one needs of another is handed to it
here: the design API gets the batch module's simulations, the runtime gets the design
API to serve beside it.

    create_server(node)          the ASGI application `overture serve` runs
    design_app(db)               the design API, simulations included
    asgi.create                  the factory uvicorn calls in each worker process
"""

from __future__ import annotations

import datetime as dt

from fastapi import FastAPI
from starlette.applications import Starlette

from overture.design.app import create_app as create_design
from overture.design.errors import NotFound, Unprocessable
from overture.history.deployed import NotDeployed
from overture.runtime import RuntimeNode
from overture.runtime import create_app as create_runtime
from overture.store import Database

__all__ = ["create_server", "design_app", "simulate"]


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
        )
    except NotDeployed as exc:
        raise NotFound(str(exc)) from exc
    except BatchError as exc:
        raise Unprocessable(str(exc)) from exc


def design_app(db: Database) -> FastAPI:
    """The design API, with everything it serves (simulations included)."""
    return create_design(db, simulate=simulate)


def create_server(node: RuntimeNode, *, design: bool = True) -> Starlette:
    """The runtime node's application, with the design API beside it when `design`."""
    return create_runtime(node, design_app(node.db) if design else None)
