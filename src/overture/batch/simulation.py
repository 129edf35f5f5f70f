"""An environment's current deployment simulated over its stored profiles.

Offer managers and delivery managers ask "where would each offer go?" before a campaign
or a deployment: the allocation runs as a batch does, records nothing, and the answer is
the report's figures (JSON) or the report itself (HTML). This is what the design API's
simulations endpoint runs (overture.server hands it to the design application, which may
not import the batch module itself) and what the console will run.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from overture.batch.report import figures_json, render_report
from overture.batch.run import BatchSpec, run_batch
from overture.history.deployed import load_live
from overture.store import Database


def simulate_deployment(
    db: Database,
    environment: str,
    *,
    placement: str,
    n: int | None = None,
    limit: int | None = None,
    at: dt.datetime | None = None,
    requested_by: str = "",
    html: bool = False,
    population: str | None = None,
) -> str:
    """The simulation's figures as JSON, or its HTML report, over the stored profiles or a
    `population` file (.parquet or .csv). Raises NotDeployed (a
    LookupError) when the environment has nothing deployed, BatchError (a ValueError) when
    the simulation cannot run as asked."""
    live = load_live(db, environment)
    spec = BatchSpec(
        placement=placement,
        n=n,
        population=population,
        stored_profiles=population is None,
        limit=limit if population is None else None,
        simulate=True,
        now=at.astimezone(dt.UTC).replace(tzinfo=None) if at and at.tzinfo else at,
    )
    meta: dict[str, Any] = {
        "environment": live.environment,
        "deployment": live.deployment,
        "requested_by": requested_by,
    }
    result = run_batch(spec, live.plan, live=live, db=db, meta=meta)
    return render_report(result.figures) if html else figures_json(result.figures)
