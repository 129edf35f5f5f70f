"""Simulations from the console: launch one over an environment's stored profiles or an
uploaded population file, watch it run, read its report; the past runs are kept.

A run goes on in a thread of the serving process (the page refreshes itself while it
runs, with or without JavaScript); its row says queued, running, done or failed. A server
stopped in the middle leaves it `running`: the list says when it started. The run itself
is the batch module's, handed to the console by overture.server (the console does not
run batches on its own)."""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

from sqlalchemy import select
from starlette.datastructures import UploadFile
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from overture.auth import Permission
from overture.console.pages.deploy import current_plan
from overture.console.pages.home import environments
from overture.console.web import UPLOAD_LIMIT, Ctx, action, number, page
from overture.design.errors import ServiceError
from overture.design.routes.simulations import Simulate
from overture.history.deployed import NotDeployed
from overture.store import Database
from overture.store.models import SimulationRun, utcnow

__all__ = ["Simulate", "routes"]


@page()
def runs(ctx: Ctx) -> Response:
    rows = ctx.session.scalars(
        select(SimulationRun).order_by(SimulationRun.id.desc()).limit(50)
    ).all()
    envs = [e for e in environments(ctx) if e["number"] is not None]
    deployed = [str(e["name"]) for e in envs]
    env = ctx.field("env") if ctx.field("env") in deployed else ""
    env = env or (ctx.environment if ctx.environment in deployed else "")
    env = env or (deployed[0] if deployed else "")
    placements: list[str] = []
    try:
        if env:
            placements = list(current_plan(ctx, env).plan.placements)
    except NotDeployed:
        pass
    return ctx.render(
        "simulations.html",
        title="Simulations",
        runs=rows,
        environments=envs,
        env=env,
        placements=placements,
        can_run=ctx.can(Permission.SIMULATE) and ctx.request.app.state.simulate is not None,
        available=ctx.request.app.state.simulate is not None,
    )


@action(Permission.SIMULATE, limit=UPLOAD_LIMIT)
def launch(ctx: Ctx) -> Response:
    simulate: Simulate | None = ctx.request.app.state.simulate
    if simulate is None:
        return ctx.render(
            "error.html",
            status=501,
            title="Simulations are not available here",
            message="this server was built without the batch module: serve with overture serve",
        )
    env, placement = ctx.field("env"), ctx.field("placement")
    limit = number(ctx.field("limit"), 0) or None
    upload = ctx.form.get("population") if ctx.form is not None else None
    population = ""
    if isinstance(upload, UploadFile) and upload.filename:
        suffix = Path(upload.filename).suffix.lower()
        if suffix not in (".parquet", ".csv"):
            return ctx.render(
                "error.html",
                status=422,
                title="The population file was not accepted",
                message=f"{upload.filename!r} is neither a .parquet nor a .csv file",
                back=ctx.url("simulations"),
            )
        folder = Path(tempfile.mkdtemp(prefix="overture-simulation-"))
        target = folder / f"population{suffix}"
        with target.open("wb") as out:
            shutil.copyfileobj(upload.file, out)
        if target.stat().st_size > UPLOAD_LIMIT - (1 << 20):
            shutil.rmtree(folder, ignore_errors=True)
            return ctx.render(
                "error.html",
                status=413,
                title="The population file is too large",
                message="upload at most 200 MiB here; for more, run overture simulate",
                back=ctx.url("simulations"),
            )
        population = str(target)
    run = SimulationRun(
        environment=env,
        placement=placement,
        population=Path(upload.filename).name
        if population and isinstance(upload, UploadFile) and upload.filename
        else "",
        requested_by=ctx.login.operator,
    )
    ctx.session.add(run)
    ctx.session.flush()
    run_id = run.id
    ctx.session.commit()
    thread = threading.Thread(
        target=_run,
        args=(
            ctx.db,
            simulate,
            run_id,
            env,
            placement,
            limit,
            population or None,
            ctx.login.operator,
        ),
        name=f"simulation-{run_id}",
        daemon=True,
    )
    thread.start()
    return ctx.redirect(f"simulations/{run_id}", done="The simulation started.")


def _run(  # noqa: PLR0917 (a thread's target takes its arguments in order)
    db: Database,
    simulate: Simulate,
    run_id: int,
    env: str,
    placement: str,
    limit: int | None,
    population: str | None,
    operator: str,
) -> None:
    with db.session() as session:
        row = session.get(SimulationRun, run_id)
        assert row is not None
        row.status = "running"
    status, report, error = "done", None, ""
    try:
        report = simulate(
            db,
            env,
            placement=placement,
            n=None,
            limit=limit,
            at=None,
            requested_by=operator,
            html=True,
            population=population,
        )
    except ServiceError as exc:
        status, error = "failed", exc.detail
    except Exception as exc:  # a failed run says why on its page (briefly: not its SQL)
        status, error = "failed", f"{type(exc).__name__}: {str(exc)[:300]}"
    finally:
        if population:
            shutil.rmtree(Path(population).parent, ignore_errors=True)
    with db.session() as session:
        row = session.get(SimulationRun, run_id)
        assert row is not None
        row.status, row.report, row.error, row.finished_at = status, report, error, utcnow()


@page()
def show(ctx: Ctx) -> Response:
    run = ctx.session.get(SimulationRun, number(ctx.request.path_params["id"], 0))
    if run is None:
        return ctx.not_found("no such simulation")
    return ctx.render("simulation.html", title=f"Simulation {run.id}", run=run)


@page()
def report(ctx: Ctx) -> Response:
    """The report itself (self-contained HTML, plotly.js embedded), shown in the run's page."""
    run = ctx.session.get(SimulationRun, number(ctx.request.path_params["id"], 0))
    if run is None or run.report is None:
        return HTMLResponse("no report", status_code=404)
    response = HTMLResponse(run.report)
    # the report is the batch module's self-contained page: its inline script may run,
    # only in a frame of the console
    # sandboxed: its scripts run in an origin of their own, apart from the console's
    response.headers["content-security-policy"] = (
        "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
        "style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"
    )
    response.headers["x-frame-options"] = "SAMEORIGIN"
    return response


routes = [
    Route("/simulations", runs, methods=["GET"]),
    Route("/simulations", launch, methods=["POST"]),
    Route("/simulations/{id}", show, methods=["GET"]),
    Route("/simulations/{id}/report", report, methods=["GET"]),
]
