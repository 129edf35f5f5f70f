"""Commands that run Overture or work on its database directly.

    overture serve                      design API + runtime on the embedded default (SQLite)
    overture serve --role runtime       a runtime-only node
    overture db upgrade|downgrade|current

These need the database URL (--database, or OVERTURE_DATABASE_URL, or ./overture.db), not a
login: whoever can reach the database can change anything in it anyway. So do `overture
users` (cli.users) and `overture keys --database` (cli.keys), through `direct()`.
Everything else an operator does goes through the API (`overture.cli.design`), which checks
roles and audits.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    import datetime as dt

    from sqlalchemy.orm import Session

    from overture.design.catalog import Actor
    from overture.store import Database

from overture.cli._app import app, escape, fail, out

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="SQLAlchemy URL or SQLite file (default: $OVERTURE_DATABASE_URL or ./overture.db).",
        show_default=False,
    ),
]

db_app = typer.Typer(no_args_is_help=True, help="Create or migrate the design database schema.")
app.add_typer(db_app, name="db")


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


def cli_actor() -> Actor:
    """Who a change made on the database directly is audited as: `cli:$USER`."""
    from overture.design.catalog import Actor

    return Actor(f"cli:{os.environ.get('USER', 'unknown')}")


@contextmanager
def direct(database: str | None, *, upgrade: bool = False) -> Iterator[Session]:
    """A session on the database itself, committed at the end, for a command that changes
    what the design API would (audited as `cli:$USER`). The schema must be the latest
    (`upgrade`: migrate it first, for commands that bootstrap). The design service's
    refusals end the command: exit 2 for wrong input (a role, a name, a password), 1 when
    the database's state refuses (no such operator or key, a name taken, the last
    administrator)."""
    from overture.design.errors import ServiceError
    from overture.store import migrate

    db = _open(database)
    try:
        if upgrade:
            db.upgrade()
        current, head = migrate.current(db), migrate.head()
        if current != head:
            where = escape(db.engine.url.render_as_string(hide_password=True))
            fail(
                f"[red]{where} holds no Overture schema[/]: run `overture db upgrade` (or "
                "`overture serve`) on it first"
                if current is None
                else f"[red]the schema of {where} is at {current}, not {head}[/]: run "
                "`overture db upgrade` on it first",
                1,
            )
        try:
            with db.session() as session:
                yield session
        except ServiceError as exc:
            fail(f"[red]{escape(exc.detail)}[/]", 2 if exc.status in (400, 422) else 1)
    finally:
        db.dispose()


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
    redis_prefix: Annotated[
        str,
        typer.Option(
            "--redis-prefix",
            help="Prefix of the keys in Redis: nodes of one database share one; another "
            "database's nodes on the same Redis need their own.",
        ),
    ] = "overture",
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    demo: Annotated[
        bool,
        typer.Option(
            help="On an empty catalog, import the demo bank's (as draft offers) and its "
            "customers' profiles."
        ),
    ] = False,
    accept_decision_times: Annotated[
        bool,
        typer.Option(
            help="Let a decision request say when it happened (`at`), to fill past days "
            "with demo traffic (overture demo-traffic). A demo's only: it moves capping "
            "windows and inventory days, so never on a real environment."
        ),
    ] = False,
    header_timeout: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            help="Seconds a client has to send a request's headers, from the connection's "
            "start or the request's first byte; then 408 and closed (default 10).",
            show_default=False,
        ),
    ] = None,
    body_timeout: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            help="Seconds a client has to send a request's body after its headers, plus one "
            "for every --body-rate bytes received; then 408 and closed (default 30).",
            show_default=False,
        ),
    ] = None,
    body_rate: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Bytes per second that earn a body one more second (default 65536).",
            show_default=False,
        ),
    ] = None,
    max_connections: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Connections (idle ones too) and requests a worker process serves at "
            "once; past them a request gets 503 at once (default 1000).",
            show_default=False,
        ),
    ] = None,
    event_skew: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Seconds an event may be dated ahead of the node's clock; later ones are "
            "refused with 422 (default 300).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the design API and the runtime (--role all), or only the runtime (--role
    runtime). Migrates the database and, on the first start, creates the administrator
    (printing how to log in). Serves until interrupted; on the way out, everything the
    runtime accepted is written. Slow clients are cut off (docs/runtime.md, "Slow
    clients")."""
    import json

    from overture.server.asgi import VARIABLE
    from overture.server.protocol import ClientLimits
    from overture.server.workers import run as serve_workers

    if role not in ("all", "runtime"):
        fail(f"[red]--role is all or runtime, not {role!r}[/]", 2)
    given = {
        "header_seconds": header_timeout,
        "body_seconds": body_timeout,
        "body_rate": body_rate,
        "max_connections": max_connections,
    }
    limits = ClientLimits.from_json({k: v for k, v in given.items() if v is not None})
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
        + (f"; counters and sessions in {redis}" if redis else "")
        + (
            "; decisions may say when they happened (demo traffic)" if accept_decision_times else ""
        ),
        soft_wrap=True,
    )
    os.environ[VARIABLE] = json.dumps(
        {
            "database": db.url,
            "environments": env or None,
            "redis": redis,
            "redis_prefix": redis_prefix,
            "design": role == "all",
            "accept_decision_times": accept_decision_times,
            "client_limits": limits.to_json(),  # read by each worker's protocol
            **({} if event_skew is None else {"event_skew_seconds": event_skew}),
        }
    )
    db.dispose()
    serve_workers(  # uvicorn, with a listening socket per worker (server/workers.py)
        "overture.server.asgi:create",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        http="overture.server.protocol:Protocol",  # uvicorn's, with the deadlines
        limit_concurrency=limits.max_connections,
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
    out.print(f"Overture on [bold]{url}[/]", soft_wrap=True)
    out.print(f"Console: [bold]{url}/console/[/]  (design API: {url}/docs)", soft_wrap=True)
    out.print(f"Database: {db.engine.url.render_as_string(hide_password=True)}")
    if demo:
        from overture.demo import profiles

        day = profiles.today()
        loaded = _demo_profiles(db, day)
        if loaded:
            out.print(
                f"Loaded {loaded:,} demo customers into table customers "
                f"({profiles.customer_id(0)}…{profiles.customer_id(loaded - 1)}), "
                f"their dates counted back from today ({day.isoformat()}).",
                soft_wrap=True,
            )
    if imported:
        out.print("Imported the demo catalog (its offers are drafts, to submit and approve).")
    if password is not None:
        out.print(
            "\nFirst start: created the administrator [bold]admin[/] with the password\n"
            f"    [bold]{password}[/]\n"
            "It is shown only this once. Log in to the console with it, at\n"
            f"    {url}/console/\n"
            "then add operators and change it (Password, top right); or from a terminal:\n"
            f"    overture login --url {url} --user admin\n"
            "    overture password\n",
            soft_wrap=True,
        )
    else:
        out.print(
            f"Log in to the console at [bold]{url}/console/[/], or from a terminal with "
            f"[bold]overture login --url {url} --user NAME[/]",
            soft_wrap=True,
        )


DEMO_CUSTOMERS = 10_000


def _demo_profiles(db: Database, day: dt.date) -> int:
    """Fill the demo's profile table, once, with customers dated from `day` (today)."""
    from sqlalchemy import inspect

    from overture.catalog import load_catalog
    from overture.demo import CATALOG_PATH, profiles
    from overture.store.profiles import load_rows

    if inspect(db.engine).has_table("customers"):
        return 0
    audience = load_catalog(CATALOG_PATH).audiences[0]
    return load_rows(db, audience, profiles.generate(DEMO_CUSTOMERS, as_of=day).to_pylist())


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
