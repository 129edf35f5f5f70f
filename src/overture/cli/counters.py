"""Counters derived from the history, on the database (and Redis) directly:

overture counters rebuild --env E [--database URL] [--redis URL] [--redis-prefix P]

Like `overture db`, it needs the database URL, not a login.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.table import Table

from overture.cli._app import app, escape, fail, out
from overture.cli.design import EnvOption
from overture.cli.server import DatabaseOption, _open

counters_app = typer.Typer(
    no_args_is_help=True, help="Counters derived from the history (inventory, Redis counts)."
)
app.add_typer(counters_app, name="counters")


@counters_app.command("rebuild")
def counters_rebuild(
    env: EnvOption,
    database: DatabaseOption = None,
    redis: Annotated[
        str | None,
        typer.Option(help="The Redis URL the nodes use: rebuild its counts too."),
    ] = None,
    redis_prefix: Annotated[
        str, typer.Option("--redis-prefix", help="The key prefix the nodes use in Redis.")
    ] = "overture",
) -> None:
    """Recompute ENV's counters from its history: the inventory counters in the database
    and, with --redis, every profile's counts and the inventory in Redis. Run it after Redis
    lost its data (before starting the nodes), or when counters look wrong."""
    from redis import RedisError

    from overture.history.deployed import NotDeployed
    from overture.history.rebuild import rebuild_counters

    db = _open(database)
    try:
        summary = rebuild_counters(db, env, redis_url=redis, redis_prefix=redis_prefix)
    except NotDeployed as exc:
        fail(f"[red]{escape(str(exc))}[/]")
    except (RedisError, ValueError) as exc:  # ValueError: a malformed Redis URL
        if redis is None:
            raise
        fail(f"[red]cannot use Redis at {escape(redis)}[/]: {escape(str(exc))}")
    finally:
        db.dispose()
    out.print(
        f"Rebuilt the counters of [bold]{escape(env)}[/] (deployment #{summary.deployment}) "
        f"from its history in {summary.seconds:.1f} s:"
    )
    out.print(f"  database  {_counters(summary.inventory_counters)}")
    if summary.redis:
        out.print(
            f"  Redis     {_counters(summary.inventory_keys)}, {summary.profiles} profiles "
            f"({summary.entries} history entries), {summary.cleared} emptied"
        )
    today = dt.datetime.now(dt.UTC).date().isoformat()
    current = sorted((k, v) for k, v in summary.inventory.items() if k[1] in (today, "total"))
    if current:
        table = Table(title="inventory now", title_justify="left")
        for col in ("offer", "period", "used"):
            table.add_column(col)
        for (offer, period), used in current:
            table.add_row(escape(offer), period, str(used))
        out.print(table)


def _counters(n: int) -> str:
    return f"{n} inventory counter{'' if n == 1 else 's'}"
