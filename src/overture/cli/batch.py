"""Outbound batches and simulations, on the database directly (like `overture counters`):

overture batch    --env E --population FILE --placement P [-n N] --out FILE [--engine spark]
overture simulate --env E --population FILE --placement P [-n N] --report out.html [--json F]
overture simulate --catalog DIR ...     a catalog folder, before it is deployed (no history)
overture demo-profiles --rows N --out FILE   demo customers to try them on

A batch records its propositions in the environment's history (runtime capping and
inventory see them); a simulation records nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from overture.cli._app import app, err, escape, fail, out
from overture.cli.server import DatabaseOption, _open

if TYPE_CHECKING:
    from overture.batch.run import BatchResult, BatchSpec
    from overture.engine.plan import DecisionPlan
    from overture.history.deployed import LivePlan
    from overture.store import Database

EnvChoice = Annotated[
    str | None,
    typer.Option("--env", "-e", help="Environment whose current deployment to run."),
]
CatalogDir = Annotated[
    Path | None,
    typer.Option("--catalog", help="A catalog folder instead of an environment (no history)."),
]
PopulationFile = Annotated[
    str | None,
    typer.Option("--population", help="The recipients: a .parquet or .csv file."),
]
PopulationQuery = Annotated[
    str | None,
    typer.Option("--population-query", help="Or SQL on the environment's database."),
]
PlacementOpt = Annotated[str, typer.Option("--placement", "-p", help="The placement to fill.")]
Count = Annotated[
    int | None, typer.Option("-n", min=1, help="Offers per recipient (default: its maximum).")
]
EngineOpt = Annotated[str, typer.Option("--engine", help="duckdb (default) or spark.")]
At = Annotated[
    dt.datetime | None,
    typer.Option("--at", help="Decide as at this UTC instant (default: now)."),
]


_INTERRUPTED = "interrupted: nothing was recorded, held inventory handed back"


@contextlib.contextmanager
def _stopped_cleanly() -> Iterator[None]:
    """Ctrl-C before the run (loading the plan, importing the report's plotting library)
    ends as Ctrl-C during it does: one line, exit 130 (Typer would exit 130 silently)."""
    try:
        yield
    except KeyboardInterrupt:
        err.print(f"[yellow]{_INTERRUPTED}[/]")
        raise typer.Exit(130) from None


def _execute(
    *,
    env: str | None,
    catalog: Path | None,
    database: str | None,
    at: dt.datetime | None,
    **spec: Any,
) -> BatchResult:
    """What `batch` and `simulate` share: the plan, the spec, the run with its progress."""
    from overture.batch.run import BatchSpec

    now = at or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with _stopped_cleanly():  # while the plan loads
        plan, live, db, meta = _source(env, catalog, database, now)
    return _run(BatchSpec(now=now, **spec), plan, live, db, meta)


def _source(
    env: str | None, catalog: Path | None, database: str | None, now: dt.datetime
) -> tuple[DecisionPlan, LivePlan | None, Database | None, dict[str, Any]]:
    if (env is None) == (catalog is None):
        fail("give --env E (a deployment) or --catalog DIR (a folder), one of them", 2)
    if catalog is not None:
        from overture.catalog import CatalogError, load_catalog
        from overture.engine import build_plan

        try:
            plan = build_plan(load_catalog(catalog), now)
        except CatalogError as exc:
            fail(f"[red]{escape(str(exc))}[/]")
        return plan, None, None, {"catalog": str(catalog)}
    from overture.history.deployed import NotDeployed, load_live

    db = _open(database)
    try:
        live = load_live(db, env or "")
    except NotDeployed as exc:
        db.dispose()
        fail(f"[red]{escape(str(exc))}[/]")
    return live.plan, live, db, {"environment": live.environment, "deployment": live.deployment}


def _run(
    spec: BatchSpec,
    plan: DecisionPlan,
    live: LivePlan | None,
    db: Database | None,
    meta: dict[str, Any],
) -> BatchResult:
    from overture.batch.run import BatchError, run_batch

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=1.0)
        try:
            return run_batch(
                spec,
                plan,
                live=live,
                db=db,
                meta=meta,
                progress=lambda what, done: bar.update(task, description=what, completed=done),
            )
        except BatchError as exc:
            fail(f"[red]{escape(str(exc))}[/]", 2)
        except KeyboardInterrupt:
            bar.stop()
            err.print(f"[yellow]{_INTERRUPTED}[/]")
            raise typer.Exit(130) from None
        finally:
            if db is not None:
                db.dispose()


@app.command("batch")
def batch(
    placement: PlacementOpt,
    env: EnvChoice = None,
    population: PopulationFile = None,
    population_query: PopulationQuery = None,
    n: Count = None,
    out_file: Annotated[
        str | None, typer.Option("--out", help="Write the propositions: .parquet or .csv.")
    ] = None,
    engine: EngineOpt = "duckdb",
    at: At = None,
    database: DatabaseOption = None,
) -> None:
    """Allocate PLACEMENT's offers to a population and record them in ENV's history, so
    that real-time capping and inventory count them."""
    result = _execute(
        placement=placement,
        env=env,
        catalog=None,
        population=population,
        population_query=population_query,
        n=n,
        out=out_file,
        engine=engine,
        at=at,
        database=database,
        simulate=False,
    )
    _summary(result, recorded=True)
    if out_file:
        out.print(f"propositions written to [bold]{escape(out_file)}[/]")


@app.command("simulate")
def simulate(
    placement: PlacementOpt,
    env: EnvChoice = None,
    catalog: CatalogDir = None,
    population: PopulationFile = None,
    population_query: PopulationQuery = None,
    n: Count = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write the HTML report here.")
    ] = None,
    json_file: Annotated[
        str | None, typer.Option("--json", help="Write the report's figures as JSON ('-': print).")
    ] = None,
    out_file: Annotated[
        str | None, typer.Option("--out", help="Also write the propositions: .parquet or .csv.")
    ] = None,
    engine: EngineOpt = "duckdb",
    at: At = None,
    database: DatabaseOption = None,
) -> None:
    """Run the allocation without recording anything, and report where each offer went."""
    with _stopped_cleanly():
        from overture.batch.report import figures_json, write_report

    result = _execute(
        placement=placement,
        env=env,
        catalog=catalog,
        population=population,
        population_query=population_query,
        n=n,
        out=out_file,
        engine=engine,
        at=at,
        database=database,
        simulate=True,
    )
    if json_file == "-":
        print(figures_json(result.figures))
        return
    _summary(result, recorded=False)
    if json_file:
        Path(json_file).write_text(figures_json(result.figures))
        out.print(f"figures written to [bold]{escape(json_file)}[/]")
    if report:
        write_report(result.figures, report)
        out.print(f"report written to [bold]{escape(str(report))}[/]: open it in a browser")


def _summary(result: BatchResult, *, recorded: bool) -> None:
    a = result.allocation
    rows = a.engine.rows(f"SELECT count(*), count(DISTINCT recipient) FROM {result.output.table}")[
        0
    ]
    recipients = a.engine.rows("SELECT count(*) FROM _population")[0][0]
    what = "recorded in the history" if recorded else "simulated: nothing recorded"
    out.print(
        f"{a.candidates.placement}: {rows[0]} propositions to {rows[1]} of {recipients} "
        f"recipients in {result.seconds:.1f} s ({what})"
    )
    if a.refusals:
        out.print(f"  inventory: {a.refusals} proposals refused (ran out), fell through")
    if result.output.render_error_count:
        out.print(
            f"  [yellow]{result.output.render_error_count} content rendering(s) failed[/], "
            f"e.g. {escape(result.output.render_errors[0])}"
        )
