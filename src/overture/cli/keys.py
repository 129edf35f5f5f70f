"""Runtime API keys, through the design API (administrators):

overture keys add --env staging --name web     prints the key, once
overture keys list
overture keys revoke ID
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from overture.cli._app import app, escape, out
from overture.cli.design import EnvOption, UrlOption, _answers, _api

keys_app = typer.Typer(no_args_is_help=True, help="Runtime API keys (one environment each).")
app.add_typer(keys_app, name="keys")


@keys_app.command("add")
@_answers
def keys_add(
    env: EnvOption,
    name: Annotated[str, typer.Option(help="What the key is for, e.g. the touchpoint.")] = "key",
    url: UrlOption = None,
) -> None:
    """Create a key for one environment; it is shown once, keep it."""
    with _api(url) as api:
        created = api.post("/v1/design/api-keys", {"environment": env, "name": name})
    out.print(f"Created key #{created['id']} ({escape(name)}) for {env}; it is shown only once:")
    out.print(created["key"], soft_wrap=True, highlight=False)


@keys_app.command("list")
@_answers
def keys_list(url: UrlOption = None) -> None:
    """Keys with their environment and whether they are revoked (never the keys)."""
    with _api(url) as api:
        items = api.get("/v1/design/api-keys").data
    table = Table(title="runtime API keys", title_justify="left")
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
    key_id: Annotated[int, typer.Argument(help="The key's id.")], url: UrlOption = None
) -> None:
    """Revoke a key: runtime nodes refuse it within 30 seconds."""
    with _api(url) as api:
        api.delete(f"/v1/design/api-keys/{key_id}")
    out.print(f"Revoked key #{key_id}.")
