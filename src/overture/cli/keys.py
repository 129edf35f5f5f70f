"""Runtime API keys (administrators): through the design API with the saved login, or with
--database on the database directly (to bootstrap, or when nobody can log in):

overture keys add --env staging --name web     prints the key, once
overture keys list [--env staging]
overture keys revoke ID

Either way the same service (`design.access`) makes, lists and revokes them; a change on
the database directly is audited as `cli:$USER`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from overture.cli._app import app, escape, fail, out
from overture.cli.design import EnvOption, UrlOption, _answers, _api

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from overture.store.models import ApiKey

keys_app = typer.Typer(no_args_is_help=True, help="Runtime API keys (one environment each).")
app.add_typer(keys_app, name="keys")

DirectOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="Work on this database directly (SQLAlchemy URL or SQLite file), not through "
        "the API: no login needed.",
        show_default=False,
    ),
]


@keys_app.command("add")
@_answers
def keys_add(
    env: EnvOption,
    name: Annotated[str, typer.Option(help="What the key is for, e.g. the touchpoint.")] = "key",
    url: UrlOption = None,
    database: DirectOption = None,
) -> None:
    """Create a key for one environment; it is shown once, keep it."""
    if database is not None:
        from overture.cli.server import cli_actor
        from overture.design import access

        with _direct(url, database) as s:
            new = access.create_api_key(s, cli_actor(), env, name)
            key_id, key = new.record.id, new.key
    else:
        with _api(url) as api:
            created = api.post("/v1/design/api-keys", {"environment": env, "name": name})
        key_id, key = created["id"], created["key"]
    out.print(f"Created key #{key_id} ({escape(name)}) for {env}; it is shown only once:")
    out.print(key, soft_wrap=True, highlight=False)


@keys_app.command("list")
@_answers
def keys_list(
    env: Annotated[
        str | None, typer.Option("--env", "-e", help="Only this environment's keys.")
    ] = None,
    url: UrlOption = None,
    database: DirectOption = None,
) -> None:
    """Keys with their environment and whether they are revoked (never the keys)."""
    if database is not None:
        from overture.design import access

        with _direct(url, database) as s:
            items = [_key(k) for k in access.list_api_keys(s)]
    else:
        with _api(url) as api:
            items = api.get("/v1/design/api-keys").data
    if env is not None:
        items = [k for k in items if k["environment"] == env]
    title = "runtime API keys" + (f" of {env}" if env else "")
    table = Table(title=title, title_justify="left")
    for col in ("id", "name", "environment", "prefix", "created", "revoked"):
        table.add_column(col)
    for k in items:
        table.add_row(
            str(k["id"]),
            escape(k["name"]),
            k["environment"],
            k["prefix"],
            str(k["created_at"])[:19],
            str(k["revoked_at"] or "")[:19],
        )
    out.print(table)


@keys_app.command("revoke")
@_answers
def keys_revoke(
    key_id: Annotated[int, typer.Argument(help="The key's id.")],
    url: UrlOption = None,
    database: DirectOption = None,
) -> None:
    """Revoke a key: runtime nodes refuse it within 30 seconds."""
    if database is not None:
        from overture.cli.server import cli_actor
        from overture.design import access
        from overture.store.models import ApiKey

        with _direct(url, database) as s:
            found = s.get(ApiKey, key_id)
            already = found.revoked_at if found is not None else None
            access.revoke_api_key(s, cli_actor(), key_id)
        if already is not None:
            out.print(f"Key #{key_id} was already revoked ({already:%Y-%m-%d %H:%M} UTC).")
            return
    else:
        with _api(url) as api:
            api.delete(f"/v1/design/api-keys/{key_id}")
    out.print(f"Revoked key #{key_id}.")


@contextmanager
def _direct(url: str | None, database: str) -> Iterator[Session]:
    if url is not None:
        fail("[red]give --url (through the API) or --database (directly), not both[/]", 2)
    from overture.cli.server import direct

    with direct(database) as session:
        yield session


def _key(key: ApiKey) -> dict[str, Any]:
    """A key as the API lists it."""
    return {
        "id": key.id,
        "name": key.name,
        "environment": key.environment.name,
        "prefix": key.prefix,
        "created_at": key.created_at.isoformat(),
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }
