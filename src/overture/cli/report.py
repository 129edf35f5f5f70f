"""`overture report`: offer performance from the design API (docs/reports.md).

overture report --env production --by offer --days 30
overture report --env staging --by day --channel web --csv > web.csv
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from overture.cli._app import app, escape, out
from overture.cli.design import EnvOption, UrlOption, _answers, _api

_BASIS = {"presentations": "pres.", "propositions": "prop.", "mixed": "mixed"}
_CAPTION = (
    "rate: accepted over presentations (pres.) or, where a channel reports none, "
    "over propositions (prop.)"
)


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}%"


@app.command()
@_answers
def report(
    env: EnvOption,
    by: Annotated[
        str,
        typer.Option(
            help="offer, placement, channel, category, segment, day or hour (the last two days)"
        ),
    ] = "offer",
    since: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD.")] = None,
    until: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD (included).")] = None,
    days: Annotated[int, typer.Option(help="Without --since: the last DAYS days.")] = 30,
    offer: Annotated[str | None, typer.Option(help="Only this offer.")] = None,
    placement: Annotated[str | None, typer.Option(help="Only this placement.")] = None,
    channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
    category: Annotated[str | None, typer.Option(help="Only this category.")] = None,
    segment: Annotated[str | None, typer.Option(help="Only profiles in this segment.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The API's JSON answer.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV, a row per value and total.")] = False,
    url: UrlOption = None,
) -> None:
    """Offer performance in ENV: propositions, presentations, acceptances, rejections, the
    acceptance rate with its 95 % interval and its trend, by one dimension."""
    if by == "hour" and since is None:
        days = min(days, 2)
    with _api(url) as api:
        result = api.get(
            f"/v1/design/environments/{env}/reports/{by}",
            since=since,
            until=until,
            days=days,
            offer=offer,
            placement=placement,
            channel=channel,
            category=category,
            segment=segment,
        ).data
    if as_json:
        out.print_json(json.dumps(result))
        return
    rows = [*result["rows"], result["total"]]
    if as_csv:
        from overture.history.reports import write_csv

        write_csv(sys.stdout, by, rows)
        return
    title = f"{env}: by {by}, {result['since']} to {result['until']}" + "".join(
        f", {k} {v}" for k, v in result["filters"].items()
    )
    table = Table(title=escape(title), title_justify="left", caption=_CAPTION)
    table.add_column(by, no_wrap=True)
    for name in ("proposed", "presented", "accepted", "rejected", "rate (95% CI)", "trend"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("over", no_wrap=True)
    for row in rows:
        rate = _percent(row["rate"])
        if row["low"] is not None:
            rate += f" ({row['low'] * 100:.0f}–{row['high'] * 100:.0f})"
        trend = "" if row["trend"] is None else f"{row['trend'] * 100:+.1f} pt"
        table.add_row(
            escape(row["key"]),
            f"{row['propositions']:,}",
            f"{row['presented']:,}",
            f"{row['accepted']:,}",
            f"{row['rejected']:,}",
            rate,
            trend,
            _BASIS.get(row["basis"], row["basis"]),
        )
    out.print(table)
    if result.get("best"):
        out.print(f"Best (with enough evidence): {', '.join(result['best'])}")
        out.print(f"Worst: {', '.join(result['worst'])}")
    for d in result["deployments"]:
        out.print(
            f"Deployment #{d['number']} on {d['at'][:16]} by {d['by']}: {escape(d['comment'])}"
        )


rollup_app = typer.Typer(no_args_is_help=True, help="The reports' daily rollup.")
app.add_typer(rollup_app, name="rollup")


@rollup_app.command("rebuild")
def rollup_rebuild(
    database: Annotated[
        str | None,
        typer.Option(
            "--database", help="SQLAlchemy URL or SQLite file (default: $OVERTURE_DATABASE_URL)."
        ),
    ] = None,
    env: Annotated[str | None, typer.Option("--env", help="Only this environment.")] = None,
) -> None:
    """Recompute the reports' rollup from the history (after restoring a backup of the
    history alone, say). Recording waits while it runs; nothing is lost."""
    import time

    from overture.cli.server import _open
    from overture.history import rollups

    db = _open(database)
    started = time.perf_counter()
    with db.engine.begin() as conn:
        rows = rollups.rebuild(conn, env)
    db.dispose()
    out.print(f"Rebuilt the rollup: {rows:,} rows in {time.perf_counter() - started:.1f} s.")
