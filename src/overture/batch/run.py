"""One batch run, from its inputs to its outputs: what `overture batch`, `overture simulate`
and the design API's simulations call.

inputs   a population (Parquet or CSV file, or a query on the environment's database);
         an environment's current deployment (its history and inventory come with it) or
         a catalog folder (no history);
steps    population -> allocate -> output (content, tracking codes) -> file / history;
         a simulation records nothing and computes the report's figures instead.

The population is read as the audience's fields, cast to their types: a missing field is
a NULL column (rules reading it are not true, as in real time), an extra column is left
out, and a missing or duplicated id is an error that says which. Odd data (NaN, infinities,
null list items, integers past 64 bits, zone-aware timestamps) is read as the runtime
coerces it: population.py says how, for every way in.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import text

from overture.batch.allocate import Allocation, allocate
from overture.batch.engines import DuckDBEngine, SparkEngine, SqlEngine, local_spark
from overture.batch.output import Output, finish
from overture.batch.population import population_columns
from overture.engine.plan import DecisionPlan
from overture.history.deployed import LivePlan
from overture.store import Database

POPULATION = "_population"
Progress = Callable[[str, float], None]  # (what is being done, fraction done)


class BatchError(ValueError):
    """Bad input to a batch, said so that the user can fix it."""


@dataclass(frozen=True)
class BatchSpec:
    placement: str
    n: int | None = None
    population: str | None = None  # a .parquet or .csv file
    population_query: str | None = None  # SQL on the environment's database
    stored_profiles: bool = False  # the audience's profile table (what the runtime looks up)
    limit: int | None = None  # of stored profiles, by id
    simulate: bool = False
    out: str | None = None  # .parquet or .csv
    engine: Literal["duckdb", "spark"] = "duckdb"
    now: dt.datetime | None = None  # naive UTC; default: now
    audience: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class BatchResult:
    allocation: Allocation
    output: Output
    seconds: float
    recorded: int = 0  # propositions written to the history
    figures: dict[str, Any] = field(default_factory=dict)  # simulations


def open_engine(name: str) -> SqlEngine:
    if name == "spark":
        return SparkEngine(local_spark())
    if name == "duckdb":
        return DuckDBEngine()
    raise BatchError(f"unknown engine {name!r}: use duckdb or spark")


def run_batch(
    spec: BatchSpec,
    plan: DecisionPlan,
    *,
    live: LivePlan | None = None,
    db: Database | None = None,
    engine: SqlEngine | None = None,
    progress: Progress | None = None,
    meta: Mapping[str, Any] | None = None,
) -> BatchResult:
    """Run a batch on `plan` (`live` and `db`: an environment's deployment and database,
    for its history, inventory and recording)."""
    from overture.batch import ledger
    from overture.batch.figures import simulation_figures

    started = time.perf_counter()
    now = spec.now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    say = progress or (lambda _what, _done: None)
    if spec.placement not in plan.placements:
        raise BatchError(
            f"unknown placement {spec.placement!r}: one of {', '.join(sorted(plan.placements))}"
        )
    if not spec.simulate and (live is None or db is None):
        raise BatchError("recording needs an environment (--env): simulate a catalog folder")
    audience = spec.audience or plan.default_audience
    if audience not in plan.audiences:
        raise BatchError(f"unknown audience {audience!r}: one of {', '.join(plan.audiences)}")
    engine = engine or open_engine(spec.engine)
    say("reading the population", 0.0)
    _population(engine, plan, audience, spec, db)
    history = None
    used = None
    hold = None
    if live is not None and db is not None:
        say("reading the history", 0.05)
        engine.register("_history", ledger.read_history(db, live, audience, now))
        history = "_history"
        if spec.simulate:
            used = ledger.inventory_used(db, live.environment)
        else:
            hold = ledger.hold_inventory(db, live, spec.placement, now)
            used = hold.used_before
    try:
        allocation = allocate(
            engine,
            plan,
            spec.placement,
            POPULATION,
            spec.n,
            now=now,
            history=history,
            inventory_used=used,
            audience=audience,
            context=spec.context,
            on_round=lambda k, most: say(f"allocating: round {k}", 0.1 + 0.6 * k / most),
        )
        say("rendering content", 0.7)
        output = finish(allocation, plan, context=spec.context)
        if spec.out:
            say(f"writing {spec.out}", 0.8)
            engine.export(f"SELECT * FROM {output.table} ORDER BY recipient, rank", spec.out)
        result = BatchResult(allocation, output, 0.0)
        if hold is not None and live is not None and db is not None:
            say("recording the propositions", 0.85)
            result.recorded, _given = ledger.record(
                db,
                live,
                engine.batches(f"SELECT * FROM {output.table}"),
                placement=spec.placement,
                audience=audience,
                now=now,
                hold=hold,
            )
    except BaseException:  # interrupted or failed: nothing recorded, inventory handed back
        if hold is not None and db is not None:
            ledger.release(db, hold)
        raise
    if spec.simulate:
        say("computing the report", 0.9)
        result.figures = simulation_figures(
            allocation,
            output,
            plan,
            now=now,
            context=spec.context,
            meta={**dict(meta or {}), "simulation": True},
        )
    result.seconds = time.perf_counter() - started
    if result.figures:
        result.figures["elapsed_seconds"] = round(result.seconds, 3)
    say("done", 1.0)
    return result


def _population(
    engine: SqlEngine, plan: DecisionPlan, audience: str, spec: BatchSpec, db: Database | None
) -> None:
    """The population as the audience's typed fields, in table POPULATION."""
    info = plan.audiences[audience]
    given = [spec.population, spec.population_query, spec.stored_profiles or None]
    if sum(g is not None for g in given) != 1:
        raise BatchError(
            "give the population: a .parquet/.csv file, a query or the stored profiles (one)"
        )
    if spec.stored_profiles:
        if db is None:
            raise BatchError("stored profiles are in an environment's database: add --env")
        engine.register("_population_raw", _stored_profiles(db, plan, audience, spec.limit))
    elif spec.population is not None:
        try:
            engine.read_file("_population_raw", spec.population)
        except ValueError as exc:
            raise BatchError(str(exc)) from exc
        except Exception as exc:  # the engine's own error (no such file, bad CSV)
            raise BatchError(f"cannot read {spec.population}: {exc}") from exc
    else:
        if db is None:
            raise BatchError("a population query runs on an environment's database: add --env")
        import pyarrow as pa

        with db.engine.connect() as conn:
            try:
                result = conn.execute(text(spec.population_query or ""))
            except Exception as exc:
                raise BatchError(f"the population query failed: {exc}") from exc
            names = list(result.keys())
            rows = result.fetchall()
        engine.register(
            "_population_raw",
            pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)}),
        )
    types = engine.columns("_population_raw")
    columns = {c.lower(): c for c in types}
    if info.id_field.lower() not in columns:
        raise BatchError(
            f"the population has no column {info.id_field!r} (the {audience} audience's id); "
            f"its columns: {', '.join(columns.values()) or 'none'}"
        )
    select = population_columns(types, info.fields, info.id_field, engine.name)
    engine.create(POPULATION, f"SELECT {', '.join(select)} FROM _population_raw")
    key = f'"{info.id_field}"'
    total, distinct, missing = engine.rows(
        f"SELECT count(*), count(DISTINCT {key}), count(*) - count({key}) FROM {POPULATION}"
    )[0]
    if missing:
        raise BatchError(f"{missing} row(s) of the population have no {info.id_field}")
    if distinct != total:
        dupes = engine.rows(
            f"SELECT {key} FROM {POPULATION} GROUP BY {key} HAVING count(*) > 1 LIMIT 3"
        )
        raise BatchError(
            f"{total - distinct} duplicate {info.id_field}(s) in the population, e.g. "
            + ", ".join(str(d[0]) for d in dupes)
            + ": give each recipient once"
        )


def _stored_profiles(db: Database, plan: DecisionPlan, audience: str, limit: int | None) -> Any:
    """The audience's profile table (the runtime's lookups) as Arrow, list fields decoded."""
    import json

    import pyarrow as pa
    from sqlalchemy import inspect, select
    from sqlalchemy.exc import NoSuchTableError

    from overture.store.profiles import table_for

    spec = next(a for a in plan.catalog.audiences if a.name == audience)
    if spec.profile_table is None:
        raise BatchError(f"the {audience} audience has no profile_table to read profiles from")
    with db.engine.connect() as conn:
        try:
            present = {c["name"] for c in inspect(conn).get_columns(spec.profile_table)}
        except NoSuchTableError as exc:
            raise BatchError(
                f"no profile table {spec.profile_table!r} in the database: load profiles first"
            ) from exc
        table = table_for(spec, only=present)
        query = select(table).order_by(table.c[spec.id_field])
        rows = conn.execute(query.limit(limit) if limit else query).mappings().all()
    lists = [n for n, k in spec.fields.items() if k.value == "list[string]" and n in present]
    data: dict[str, list[Any]] = {c.name: [r[c.name] for r in rows] for c in table.c}
    for name in lists:
        data[name] = [json.loads(v) if isinstance(v, str) else v for v in data[name]]
    return pa.table(data)
