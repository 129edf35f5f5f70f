"""Catalog commands that work on YAML files, no server needed.

    overture init DIR                 write the demo catalog into DIR
    overture validate PATH            check a catalog; every problem, with where and how to fix it
    overture decide PATH -p P ...     ask the engine for offers (a table, or --json)
    overture demo-profiles --rows N   write the demo population (Parquet or CSV)

Presentation lives here; the work is done by overture.catalog and overture.engine.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from overture.cli._app import app, err, escape, out


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create the demo catalog in.")],
    force: Annotated[bool, typer.Option(help="Overwrite files that exist.")] = False,
) -> None:
    """Write the demo catalog (a retail bank) into DIRECTORY."""
    from overture.demo import CATALOG_PATH

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sorted(CATALOG_PATH.glob("*.yaml")):
        target = directory / source.name
        if target.exists() and not force:
            err.print(f"[red]{target} exists[/]; use --force to overwrite it")
            raise typer.Exit(1)
        shutil.copyfile(source, target)
        written.append(target.name)
    out.print(f"Wrote the demo catalog to [bold]{directory}[/] ({', '.join(written)}).")
    out.print(
        f"Next: [bold]overture validate {directory}[/] and "
        f"[bold]overture decide {directory} --placement web_home_hero "
        "--profile-id C0000042 --explain[/]"
    )


@app.command()
def validate(
    path: Annotated[Path, typer.Argument(help="A catalog YAML file or folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the issues as JSON.")] = False,
) -> None:
    """Check a catalog and report every problem at once; exits 1 if there are errors."""
    from overture.catalog import validate_path

    report = validate_path(path)
    if as_json:
        out.print_json(
            json.dumps({"ok": report.ok, "issues": [i.to_dict() for i in report.issues]})
        )
        raise typer.Exit(0 if report.ok else 1)
    for issue in report.issues:
        colour = "red" if issue.severity == "error" else "yellow"
        out.print(f"[{colour}]{issue.severity:<7}[/] {escape(str(issue))}", soft_wrap=True)
        if issue.file:
            out.print(
                f"        [dim]at {issue.file}{f':{issue.line}' if issue.line else ''}[/]",
                soft_wrap=True,
            )
    errors, warnings = len(report.errors), len(report.warnings)
    if report.catalog is not None:
        c = report.catalog
        out.print(
            f"[green]✓[/] catalog {c.name!r} is valid: {len(c.offers)} offers, "
            f"{len(c.placements)} placements, {len(c.categories)} categories, "
            f"{len(c.segments)} segments, {len(c.policies)} policies"
            + (f" ({warnings} warning{'s' * (warnings != 1)})" if warnings else ""),
            soft_wrap=True,
        )
    else:
        out.print(
            f"[red]✗[/] {errors} error{'s' * (errors != 1)}"
            + (f", {warnings} warning{'s' * (warnings != 1)}" if warnings else "")
        )
        raise typer.Exit(1)


@app.command()
def decide(
    path: Annotated[Path, typer.Argument(help="A catalog YAML file or folder.")],
    placement: Annotated[
        list[str],
        typer.Option(
            "--placement",
            "-p",
            help="Placement to fill; repeat for several (deduplicated in order).",
        ),
    ],
    count: Annotated[
        int | None,
        typer.Option(
            "-n", "--count", help="Offers per placement (default: the placement's max_offers)."
        ),
    ] = None,
    profile: Annotated[str | None, typer.Option(help="Profile attributes as JSON.")] = None,
    profile_id: Annotated[
        str | None,
        typer.Option(help="Look the profile up by id: in --profiles, or in the demo population."),
    ] = None,
    profiles: Annotated[
        Path | None,
        typer.Option(
            help="A Parquet or CSV file of profiles (e.g. from `overture demo-profiles`)."
        ),
    ] = None,
    context: Annotated[str | None, typer.Option(help="Request context as JSON.")] = None,
    audience: Annotated[str | None, typer.Option(help="Audience (default: the first).")] = None,
    category: Annotated[list[str] | None, typer.Option(help="Restrict to categories.")] = None,
    theme: Annotated[list[str] | None, typer.Option(help="Restrict to themes.")] = None,
    now: Annotated[
        str | None, typer.Option(help="Decide as of this ISO time (default: now).")
    ] = None,
    explain: Annotated[bool, typer.Option(help="Tell what happened to every candidate.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
) -> None:
    """Decide which offers to show on one or more placements."""
    from overture.catalog import CatalogError, load_catalog
    from overture.engine import DecisionRequest, RequestError, build_plan
    from overture.rules.functions import parse_datetime

    try:
        catalog = load_catalog(path)
    except CatalogError as exc:
        err.print(f"[red]The catalog has errors[/] (run `overture validate {path}`):")
        for issue in exc.issues[:10]:
            err.print(f"  {escape(str(issue))}")
        raise typer.Exit(1) from None
    when = _option(lambda: parse_datetime(now), "--now", "an ISO date-time") if now else None
    attributes: dict[str, Any] = _json_option(profile, "--profile") if profile else {}
    if profile_id is not None:
        # a demo customer is dated from the day of the decision (naive UTC)
        found = _lookup(catalog, audience, profile_id, profiles, when.date() if when else None)
        attributes = {**found, **attributes}
    plan = build_plan(catalog, when, validated=True)
    request = DecisionRequest.for_placements(
        [(p, count) if count else p for p in placement],
        audience=audience,
        profile=attributes,
        profile_id=profile_id,
        context=_json_option(context, "--context") if context else {},
        categories=category or [],
        themes=theme or [],
        now=when,
        explain=explain,
    )
    try:
        decision = plan.decide(request)
    except RequestError as exc:
        for problem in exc.problems:
            err.print(f"[red]error[/] {escape(problem)}")
        raise typer.Exit(2) from None
    if as_json:
        out.print_json(json.dumps(decision.to_dict(), default=str))
        return
    _print_decision(decision, explain)


@app.command("demo-profiles")
def demo_profiles(
    rows: Annotated[int, typer.Option(min=1, help="How many customers.")] = 10_000,
    out_file: Annotated[Path, typer.Option("--out", help="A .parquet or .csv file.")] = Path(
        "profiles.parquet"
    ),
    seed: Annotated[int, typer.Option(help="Another seed gives another population.")] = 7,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="The day their dates count back from, YYYY-MM-DD (default: today, UTC).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write the demo catalog's customers: the same rows for the same seed, every time, their
    dates (customer since, last login) counted back from today or --as-of."""
    from overture.demo import profiles as demo

    if out_file.suffix not in (".parquet", ".csv"):
        err.print(f"[red]--out must end in .parquet or .csv[/], not {out_file.name!r}")
        raise typer.Exit(2)
    day = (
        _option(lambda: dt.date.fromisoformat(as_of), "--as-of", "a date like 2026-11-20")
        if as_of
        else demo.today()
    )
    demo.write(demo.generate(rows, seed, day), out_file)
    last = demo.customer_id(rows - 1)
    out.print(
        f"Wrote {rows:,} customers to [bold]{out_file}[/] (ids C0000001…{last}), "
        f"dated as at {day.isoformat()}.",
        soft_wrap=True,
    )


# -- helpers -----------------------------------------------------------------------------------
def _option(parse: Any, name: str, what: str) -> Any:
    try:
        return parse()
    except ValueError:
        err.print(f"[red]{name}[/] must be {what}")
        raise typer.Exit(2) from None


def _json_option(text: str, name: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        err.print(f"[red]{name} is not valid JSON[/]: {exc}")
        raise typer.Exit(2) from None
    if not isinstance(value, dict):
        err.print(f"[red]{name} must be a JSON object[/], like '{{\"age\": 30}}'")
        raise typer.Exit(2)
    return value


def _lookup(
    catalog: Any,
    audience: str | None,
    profile_id: str,
    profiles: Path | None,
    day: dt.date | None,
) -> dict[str, Any]:
    """A profile by id, from a file or (without one) the demo population, dated as if the
    demo were loaded on `day` (the day of the decision; None: today)."""
    if profiles is None:
        from overture.demo import profiles as demo

        try:
            return demo.profile(profile_id, as_of=day)
        except ValueError as exc:
            err.print(f"[red]{exc}[/]; give --profiles FILE to look ids up in your own profiles")
            raise typer.Exit(2) from None
    import duckdb

    from overture.batch.population import read_profile

    info = next(
        (a for a in catalog.audiences if a.name == (audience or catalog.audiences[0].name)), None
    )
    if info is None:
        err.print(f"[red]unknown audience {audience!r}[/]")
        raise typer.Exit(2)
    try:  # read as a batch reads the file: odd data (NaN, time zones, ...) alike
        found = read_profile(str(profiles), info.fields, info.id_field, profile_id)
    except duckdb.Error as exc:
        err.print(f"[red]cannot read {profiles}[/]: {exc}")
        raise typer.Exit(2) from None
    if found is None:
        err.print(f"[red]no profile with {info.id_field} = {profile_id!r} in {profiles}[/]")
        raise typer.Exit(2)
    return found


def _print_decision(decision: Any, explain: bool) -> None:
    who = decision.profile_id or "an anonymous profile"
    out.print(
        f"Decision for [bold]{who}[/] ({decision.audience}) at {decision.now:%Y-%m-%d %H:%M} UTC"
    )
    for pd in decision.placements:
        table = Table(title=f"{pd.placement} ({pd.channel})", title_justify="left", expand=False)
        for col in ("rank", "offer", "score", "title / content", "tracking code"):
            table.add_column(col, overflow="fold")
        for p in pd.propositions:
            text = p.content.get("title") or next(iter(p.content.values()), "")
            score = "fallback" if p.fallback else f"{p.score:.1f}"
            table.add_row(
                str(p.rank),
                f"{p.offer_code}\n[dim]{escape(p.offer_name)}[/]",
                score,
                escape(text),
                p.tracking_code,
            )
        if pd.default_content is not None:
            table.add_row(
                "-",
                "[italic]default content[/]",
                "",
                escape(
                    pd.default_content.get("title") or next(iter(pd.default_content.values()), "")
                ),
                "",
            )
        out.print(table)
        if explain and pd.explain:
            why = Table(title=f"why, on {pd.placement}", title_justify="left", show_lines=False)
            for col in ("offer", "step", "score", "reason"):
                why.add_column(col, overflow="fold")
            for t in pd.explain:
                style = "green" if t.selected else "dim" if t.step == "candidates" else ""
                score = "" if t.score is None else f"{t.score:.1f}"
                why.add_row(t.offer_code, t.step, score, escape(t.reason), style=style)
            out.print(why)
    if decision.rule_errors:
        out.print(
            f"[yellow]{len(decision.rule_errors)} rule error(s)[/] (the offers concerned "
            "were treated as ineligible):"
        )
        for e in decision.rule_errors:
            out.print(f"  {e.offer_code or '-'} {e.rule}: {escape(e.message)}")
