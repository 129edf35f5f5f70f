"""Commands that run Overture or work on its database directly.

    overture serve                      design API + runtime on the embedded default (SQLite)
    overture serve --role runtime       a runtime-only node
    overture db upgrade|downgrade|current
    overture users add NAME --role R    add an operator (bootstrap and recovery)

These need the database URL (--database, or OVERTURE_DATABASE_URL, or ./overture.db), not a
login: whoever can reach the database can change anything in it anyway. Everything else an
operator does goes through the API (`overture.cli.design`), which checks roles and audits.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from overture.store import Database

from overture.cli._app import app, fail, out

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="SQLAlchemy URL or SQLite file (default: $OVERTURE_DATABASE_URL or ./overture.db).",
        show_default=False,
    ),
]

db_app = typer.Typer(no_args_is_help=True, help="Create or migrate the design database schema.")
users_app = typer.Typer(no_args_is_help=True, help="Manage operators directly in the database.")
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")


def _open(url: str | None) -> Database:
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

    from overture.store import Database

    try:
        db = Database(url)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        fail(
            f"[red]cannot use the database URL[/] ({exc}): give a SQLite file, "
            "sqlite:///path or postgresql://user@host/db",
            2,
        )
    try:
        with db.engine.connect():
            pass
    except OperationalError as exc:
        fail(f"[red]cannot connect to {db.engine.url!r}[/]: {exc.orig}")
    return db


@app.command()
def serve(
    database: DatabaseOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    role: Annotated[
        str,
        typer.Option(
            help="all: the design API and the runtime (the embedded default); "
            "runtime: a runtime-only node (several may serve one environment)."
        ),
    ] = "all",
    env: Annotated[
        list[str] | None,
        typer.Option("--env", help="Environment to serve (repeat; default: all of them)."),
    ] = None,
    redis: Annotated[
        str | None,
        typer.Option(help="Redis URL for counters and sessions shared by several nodes."),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    demo: Annotated[
        bool,
        typer.Option(
            help="On an empty catalog, import the demo bank's (as draft offers) and its "
            "customers' profiles."
        ),
    ] = False,
) -> None:
    """Serve the design API and the runtime (--role all), or only the runtime (--role
    runtime). Migrates the database and, on the first start, creates the administrator
    (printing how to log in). Serves until interrupted; on the way out, everything the
    runtime accepted is written."""
    import json

    import uvicorn

    from overture.server.asgi import VARIABLE

    if role not in ("all", "runtime"):
        fail(f"[red]--role is all or runtime, not {role!r}[/]", 2)
    db = _open(database)
    db.upgrade()
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    if role == "all":
        _prepare_design(db, url, demo)
    else:
        out.print(f"Overture runtime node on [bold]{url}[/]", soft_wrap=True)
        out.print(f"Database: {db.engine.url.render_as_string(hide_password=True)}")
    out.print(
        f"Runtime: POST {url}/v1/decisions, {url}/interact/servlet/RestServlet "
        f"(OpenAPI: {url}/runtime/openapi.json); serving "
        + (", ".join(env) if env else "every environment")
        + (f"; counters and sessions in {redis}" if redis else ""),
        soft_wrap=True,
    )
    os.environ[VARIABLE] = json.dumps(
        {
            "database": db.url,
            "environments": env or None,
            "redis": redis,
            "design": role == "all",
        }
    )
    db.dispose()
    uvicorn.run(
        "overture.server.asgi:create",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


def _prepare_design(db: Database, url: str, demo: bool) -> None:
    from overture.design import access, transfer
    from overture.design.catalog import Actor

    with db.session() as s:
        password = access.ensure_administrator(s)
        imported = demo and transfer.is_empty(s)
        if imported:
            from overture.demo import CATALOG_PATH

            files = {p.name: p.read_text() for p in sorted(CATALOG_PATH.glob("*.yaml"))}
            transfer.import_catalog(s, Actor("overture"), files)
    out.print(f"Overture on [bold]{url}[/]  (design API: {url}/docs)", soft_wrap=True)
    out.print(f"Database: {db.engine.url.render_as_string(hide_password=True)}")
    if demo:
        loaded = _demo_profiles(db)
        if loaded:
            out.print(f"Loaded {loaded:,} demo customers into table customers (C0000000…).")
    if imported:
        out.print("Imported the demo catalog (its offers are drafts, to submit and approve).")
    if password is not None:
        out.print(
            "\nFirst start: created the administrator [bold]admin[/] with the password\n"
            f"    [bold]{password}[/]\n"
            "It is shown only this once. Log in, then add operators and change it:\n"
            f"    overture login --url {url} --user admin\n"
            "    overture password\n",
            soft_wrap=True,
        )
    else:
        out.print(f"Log in with [bold]overture login --url {url} --user NAME[/]")


DEMO_CUSTOMERS = 10_000


def _demo_profiles(db: Database) -> int:
    """Fill the demo's profile table, once."""
    from sqlalchemy import inspect

    from overture.catalog import load_catalog
    from overture.demo import CATALOG_PATH, profiles
    from overture.store.profiles import load_rows

    if inspect(db.engine).has_table("customers"):
        return 0
    audience = load_catalog(CATALOG_PATH).audiences[0]
    return load_rows(db, audience, profiles.generate(DEMO_CUSTOMERS).to_pylist())


@db_app.command("upgrade")
def db_upgrade(
    database: DatabaseOption = None,
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Migrate the schema up (to the latest by default)."""
    from overture.store import migrate

    db = _open(database)
    before = migrate.current(db)
    db.upgrade(revision)
    out.print(f"Schema at {migrate.current(db) or 'base'} (was {before or 'empty'}).")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, e.g. base or -1.")],
    database: DatabaseOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Migrate the schema down. Downgrading to `base` drops every table and its data."""
    from overture.store import migrate

    db = _open(database)
    if not yes:
        typer.confirm(
            f"Downgrade {db.engine.url.render_as_string(hide_password=True)} to {revision}? "
            "Tables a migration created are dropped with their data",
            abort=True,
        )
    migrate.downgrade(db, revision)
    out.print(f"Schema at {migrate.current(db) or 'base'}.")


@db_app.command("current")
def db_current(database: DatabaseOption = None) -> None:
    """Show the schema revision and the latest one this version knows."""
    from overture.store import migrate

    db = _open(database)
    out.print(f"Schema at {migrate.current(db) or 'base (empty)'}; latest is {migrate.head()}.")


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[
        list[str],
        typer.Option(
            "--role",
            "-r",
            help="administrator, offer_manager, approver, deployer, delivery_manager or viewer; "
            "repeat for several.",
        ),
    ],
    database: DatabaseOption = None,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from standard input."),
    ] = False,
) -> None:
    """Add an operator. Without --password-stdin a random password is made and printed once."""
    from overture.auth import new_password
    from overture.design import access
    from overture.design.catalog import Actor
    from overture.design.errors import ServiceError

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if len(password) < 10:
            fail("[red]the password must have at least 10 characters[/]", 2)
        generated = False
    else:
        password, generated = new_password(), True
    db = _open(database)
    db.upgrade()
    try:
        with db.session() as s:
            access.create_operator(
                s, Actor(f"cli:{os.environ.get('USER', 'unknown')}"), name, password, role
            )
    except ServiceError as exc:
        fail(f"[red]{exc}[/]", 2)
    out.print(f"Added [bold]{name}[/] ({', '.join(sorted(set(role)))}).")
    if generated:
        out.print(f"Password (shown once): [bold]{password}[/]")
