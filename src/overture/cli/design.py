"""Design commands: an operator's work, through the design API.

    overture login / logout / whoami / password
    overture catalog import DIR | export DIR
    overture offers list | submit | approve | reject
    overture environments
    overture plan --env E [--json]
    overture deploy --env E [--comment C] [--force]
    overture deployments --env E
    overture rollback --env E --to N

Each command is one or a few API calls with the saved login; the API decides what the
operator may do, validates and audits. Failures print the API's problem (every located
issue of an invalid catalog) and exit non-zero.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, ParamSpec

import typer
from rich.table import Table

from overture.cli._app import app, err, escape, fail, out
from overture.cli.client import Api, ApiError, forget_login, save_login, server_url

P = ParamSpec("P")
UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="Design API URL (default: $OVERTURE_URL, else the server you last logged in to).",
        show_default=False,
    ),
]
EnvOption = Annotated[str, typer.Option("--env", "-e", help="Environment, e.g. staging.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer.")]

catalog_app = typer.Typer(no_args_is_help=True, help="Import or export the catalog as YAML.")
offers_app = typer.Typer(no_args_is_help=True, help="List offers and move them through approval.")
app.add_typer(catalog_app, name="catalog")
app.add_typer(offers_app, name="offers")


@contextmanager
def _api(url: str | None) -> Iterator[Api]:
    """A logged-in client; any API error ends the command with its message (exit 1)."""
    try:
        with Api.connect(url) as api:
            yield api
    except ApiError as exc:
        _report(exc)
        raise typer.Exit(1) from None


def _answers(command: Callable[P, None]) -> Callable[P, None]:
    """An answer without what the design API always sends means the URL is something else:
    say so, rather than show a traceback."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except (KeyError, TypeError, AttributeError) as exc:
            fail(
                f"[red]error[/] unexpected answer from the server ({type(exc).__name__}: "
                f"{escape(str(exc))}): is the URL the Overture design API?",
                1,
            )

    return run


def _report(exc: ApiError, label: str = "error") -> None:
    """The API's refusal, then each located problem it lists (with its hint)."""
    err.print(f"[red]{escape(label)}[/] {escape(str(exc))}", soft_wrap=True)
    for issue in exc.issues:
        where = issue.get("where") or ""
        line = f"  {where}: {issue.get('message', '')}" if where else f"  {issue.get('message')}"
        if issue.get("hint"):
            line += f" — {issue['hint']}"
        err.print(escape(line), soft_wrap=True)


# -- session ---------------------------------------------------------------------------------
@app.command()
@_answers
def login(
    url: UrlOption = None,
    user: Annotated[str | None, typer.Option("--user", "-u", help="Operator name.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Log in to a design API and keep the token for the next commands."""
    base = server_url(url)
    name = user or typer.prompt("Operator")
    password = (
        sys.stdin.readline().rstrip("\n")
        if password_stdin
        else typer.prompt("Password", hide_input=True)
    )
    try:
        with Api(base, None) as api:
            answer = api.post("/v1/design/auth/login", {"name": name, "password": password})
    except ApiError as exc:
        _report(exc)
        raise typer.Exit(1) from None
    path = save_login(base, answer)
    out.print(
        f"Logged in to {base} as [bold]{answer['operator']}[/] ({', '.join(answer['roles'])}); "
        f"the token expires {answer['expires_at']} and is kept in {path}.",
        soft_wrap=True,
    )


@app.command()
@_answers
def logout(url: UrlOption = None) -> None:
    """Revoke the saved token and forget it."""
    base = server_url(url)
    try:
        with Api.connect(base) as api:
            api.post("/v1/design/auth/logout")
    except ApiError as exc:
        if exc.status == 0 and "not logged in" not in str(exc):
            forget_login(base)
            fail(
                f"[yellow]forgot the token here, but could not revoke it[/] ({escape(str(exc))}): "
                "it stays valid on the server until it expires",
                1,
            )
        if exc.status not in (0, 401):  # 401: already expired or revoked
            _report(exc)
            raise typer.Exit(1) from None
    forget_login(base)
    out.print(f"Logged out of {base}.")


@app.command()
@_answers
def whoami(url: UrlOption = None) -> None:
    """Who the saved token belongs to, and their roles."""
    with _api(url) as api:
        me = api.get("/v1/design/auth/me").data
    out.print(f"{me['name']} on {api.url}: {', '.join(me['roles'])}")


@app.command()
@_answers
def password(url: UrlOption = None) -> None:
    """Change your password (your other sessions end)."""
    current = typer.prompt("Current password", hide_input=True)
    new = typer.prompt("New password (10 characters or more)", hide_input=True)
    if typer.prompt("Again", hide_input=True) != new:
        fail("[red]the two new passwords differ[/]; nothing changed", 2)
    with _api(url) as api:
        api.call("PUT", "/v1/design/auth/password", json_body={"current": current, "new": new})
    out.print("Password changed.")


# -- catalog ---------------------------------------------------------------------------------
@catalog_app.command("import")
@_answers
def catalog_import(
    path: Annotated[Path, typer.Argument(help="A catalog folder (its *.yaml files) or one file.")],
    url: UrlOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Make the design database hold exactly this catalog: all of it, or nothing if it has
    errors. New and changed offers become drafts (or pending revisions of approved ones)."""
    files = _read_catalog(path)
    with _api(url) as api:
        summary = api.post("/v1/design/catalog/import", {"files": files})
    if as_json:
        out.print_json(json.dumps(summary))
        return
    _print_changes(summary["sections"], summary["settings_changed"], "Imported")


@catalog_app.command("export")
@_answers
def catalog_export(
    folder: Annotated[Path, typer.Argument(help="Folder to write the YAML files into.")],
    url: UrlOption = None,
    force: Annotated[bool, typer.Option(help="Overwrite files that exist.")] = False,
) -> None:
    """Write the catalog (every offer's latest revision) as YAML files `import` reads back."""
    with _api(url) as api:
        files: dict[str, str] = api.get("/v1/design/catalog/export").data["files"]
    existing = [name for name in files if (folder / name).exists()]
    if existing and not force:
        fail(f"[red]{', '.join(existing)} exist in {folder}[/]; use --force to overwrite", 1)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    out.print(f"Wrote {', '.join(files)} to [bold]{folder}[/].")


def _read_catalog(path: Path) -> dict[str, str]:
    if path.is_dir():
        paths = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
        if not paths:
            fail(f"[red]{path} holds no .yaml file[/]", 2)
    elif path.is_file():
        paths = [path]
    else:
        fail(f"[red]{path} does not exist[/]", 2)
    try:
        return {p.name: p.read_text(encoding="utf-8") for p in paths}
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"[red]cannot read the catalog[/]: {exc}", 2)


def _print_changes(sections: dict[str, Any], settings_changed: bool, verb: str) -> None:
    table = Table(title=f"{verb}: changes by section", title_justify="left")
    for col in ("section", "added", "changed", "removed"):
        table.add_column(col, overflow="fold")
    for section, change in sections.items():
        if any(change.values()):
            table.add_row(section, *(_names(change[k]) for k in ("added", "changed", "removed")))
    if settings_changed:
        table.add_row("settings", "", "changed", "")
    if table.row_count:
        out.print(table)
    else:
        out.print(f"{verb}: nothing changed.")


def _names(names: list[str], limit: int = 12) -> str:
    if not names:
        return ""
    shown = ", ".join(names[:limit])
    more = f" … (+{len(names) - limit})" if len(names) > limit else ""
    return f"{len(names)}: {shown}{more}"


# -- offers ----------------------------------------------------------------------------------
CodesArgument = Annotated[list[str] | None, typer.Argument(help="Offer codes.", show_default=False)]


@offers_app.command("list")
@_answers
def offers_list(
    url: UrlOption = None,
    status: Annotated[
        str | None, typer.Option(help="draft, pending, approved or rejected.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Offers with their workflow status and what each environment runs."""
    with _api(url) as api:
        offers = api.pages("/v1/design/offers", status=status)
    if as_json:
        out.print_json(json.dumps(offers))
        return
    table = Table(title=f"{len(offers)} offers", title_justify="left")
    for col in ("code", "name", "status", "revision", "approved", "live"):
        table.add_column(col, overflow="fold")
    for o in offers:
        live = ", ".join(f"{env}:r{rev}" for env, rev in (o.get("live") or {}).items())
        table.add_row(
            o["key"],
            escape(o["spec"]["name"]),
            o["status"],
            str(o["revision"]),
            "" if o["approved_revision"] is None else f"r{o['approved_revision']}",
            live,
        )
    out.print(table)


@offers_app.command("submit")
@_answers
def offers_submit(
    codes: CodesArgument = None,
    all_: Annotated[bool, typer.Option("--all", help="Every draft or rejected offer.")] = False,
    url: UrlOption = None,
) -> None:
    """Submit offers for approval."""
    _transition(url, "submit", codes, every=all_, states=("draft", "rejected"), body=None)


@offers_app.command("approve")
@_answers
def offers_approve(
    codes: CodesArgument = None,
    all_: Annotated[bool, typer.Option("--all", help="Every pending offer.")] = False,
    comment: Annotated[str, typer.Option(help="A note kept with the decision.")] = "",
    url: UrlOption = None,
) -> None:
    """Approve the pending revision of offers (what you approve is what you last read)."""
    _transition(url, "approve", codes, every=all_, states=("pending",), body={"comment": comment})


@offers_app.command("reject")
@_answers
def offers_reject(
    codes: Annotated[list[str], typer.Argument(help="Offer codes.")],
    comment: Annotated[str, typer.Option(help="Why: the offer manager reads it.")],
    url: UrlOption = None,
) -> None:
    """Reject the pending revision of offers, saying why."""
    _transition(url, "reject", codes, every=False, states=("pending",), body={"comment": comment})


def _transition(
    url: str | None,
    action: str,
    codes: list[str] | None,
    *,
    every: bool,
    states: tuple[str, ...],
    body: dict[str, Any] | None,
) -> None:
    if bool(codes) == every:
        fail(f"[red]name the offers to {action}, or give --all[/] (not both)", 2)
    failed = 0
    with _api(url) as api:
        if every:
            targets = [
                (o["key"], o["version"])
                for state in states
                for o in api.pages("/v1/design/offers", status=state)
            ]
        else:
            targets = []
            for code in codes or []:
                try:
                    found = api.get(f"/v1/design/offers/{code}").data
                except ApiError as exc:
                    _report(exc, f"{code}:")
                    failed += 1
                    continue
                targets.append((code, found["version"]))

        def act(code: str, version: int) -> None:
            api.post(f"/v1/design/offers/{code}/{action}", body, if_match=f'"{version}"')

        done = _each(targets, act)
    verb = {"submit": "Submitted", "approve": "Approved", "reject": "Rejected"}[action]
    failed += len(targets) - len(done)
    listed = f": {', '.join(done)}" if done else ""
    out.print(
        f"{verb} {len(done)} offer{'s' * (len(done) != 1)}{listed}"
        + (f"; {failed} failed" if failed else ""),
        soft_wrap=True,
    )
    if failed:
        raise typer.Exit(1)


def _each(targets: list[tuple[str, int]], act: Callable[[str, int], Any]) -> list[str]:
    """Act on each offer; an offer that fails is reported and the others still go ahead."""
    done = []
    for code, version in targets:
        try:
            act(code, version)
        except ApiError as exc:
            _report(exc, f"{code}:")
            continue
        done.append(code)
    return done


# -- environments and deployments --------------------------------------------------------------
@app.command()
@_answers
def environments(url: UrlOption = None) -> None:
    """Runtime environments and the deployment each one runs."""
    with _api(url) as api:
        envs = api.get("/v1/design/environments").data
    table = Table(title="environments", title_justify="left")
    for col in ("name", "requires", "current deployment", "description"):
        table.add_column(col)
    for e in envs:
        current = "" if e["current"] is None else f"#{e['current']}"
        table.add_row(e["name"], e["requires"] or "", current, escape(e["description"]))
    out.print(table)


@app.command()
@_answers
def plan(env: EnvOption, url: UrlOption = None, as_json: JsonFlag = False) -> None:
    """What deploying to ENV now would change, and whether it can be deployed."""
    with _api(url) as api:
        result = api.get(f"/v1/design/environments/{env}/plan").data
    if as_json:
        out.print_json(json.dumps(result))
        return
    running = "nothing yet" if result["current"] is None else f"deployment #{result['current']}"
    out.print(f"Plan for [bold]{env}[/] (runs {running}); content {result['content_hash'][:12]}")
    if result["unchanged"]:
        out.print("No change: the approved catalog is what it runs.")
    else:
        _print_changes(result["changes"], result["settings_changed"], "Would deploy")
    if result["not_yet_approved"]:
        waiting = result["not_yet_approved"]
        out.print(
            f"[yellow]{len(waiting)} offer(s) have a revision not yet approved[/] (their "
            f"approved revision, if any, is what deploys): {_names(waiting)}",
            soft_wrap=True,
        )
    if result["requires"]:
        ran = result["ran_on_required"]
        mark = "[green]✓[/]" if ran else "[yellow]✗[/]"
        out.print(f"{mark} this content {'ran' if ran else 'has not run'} on {result['requires']}")
    for issue in result["errors"]:
        err.print(
            f"[red]error[/] {escape(issue['where'])}: {escape(issue['message'])}", soft_wrap=True
        )
    if result["errors"]:
        fail(f"[red]{len(result['errors'])} error(s)[/]: this catalog cannot be deployed", 1)


@app.command()
@_answers
def deploy(
    env: EnvOption,
    comment: Annotated[str, typer.Option(help="Why; kept with the deployment.")] = "",
    force: Annotated[
        bool,
        typer.Option(help="Administrators: deploy what has not run on the required environment."),
    ] = False,
    url: UrlOption = None,
) -> None:
    """Deploy the approved catalog to ENV as its next deployment number."""
    with _api(url) as api:
        d = api.post(
            f"/v1/design/environments/{env}/deployments", {"comment": comment, "force": force}
        )
    forced = " [yellow](forced)[/]" if d["forced"] else ""
    out.print(
        f"Deployed [bold]{env} #{d['number']}[/]{forced}: {len(d['offers'])} offers, "
        f"content {d['content_hash'][:12]}, by {d['deployed_by']}."
    )


@app.command()
@_answers
def deployments(env: EnvOption, url: UrlOption = None, as_json: JsonFlag = False) -> None:
    """The deployment history of ENV, newest first."""
    with _api(url) as api:
        rows = api.pages(f"/v1/design/environments/{env}/deployments")
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(title=f"deployments of {env}", title_justify="left")
    for col in ("#", "when (UTC)", "by", "offers", "content", "note"):
        table.add_column(col, overflow="fold")
    for d in rows:
        notes = [escape(d["comment"])] if d["comment"] else []
        if d["rollback_of"]:
            notes.append(f"rollback to #{d['rollback_of']}")
        if d["forced"]:
            notes.append("forced")
        table.add_row(
            str(d["number"]),
            d["deployed_at"][:19].replace("T", " "),
            d["deployed_by"],
            str(len(d["offers"])),
            d["content_hash"][:12],
            "; ".join(notes),
        )
    out.print(table)


@app.command()
@_answers
def rollback(
    env: EnvOption,
    to: Annotated[int, typer.Option("--to", min=1, help="The deployment number to run again.")],
    comment: Annotated[str, typer.Option(help="Why; kept with the deployment.")] = "",
    url: UrlOption = None,
) -> None:
    """Deploy an earlier deployment's snapshot again, as ENV's next number."""
    with _api(url) as api:
        d = api.post(f"/v1/design/environments/{env}/rollback", {"to": to, "comment": comment})
    out.print(
        f"Rolled [bold]{env}[/] back to the content of #{to}: now deployment "
        f"[bold]#{d['number']}[/] ({len(d['offers'])} offers)."
    )
