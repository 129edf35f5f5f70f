"""Operators, on the database directly (an administrator's commands, to bootstrap and to
recover when nobody can log in):

    overture users list [--json]
    overture users add NAME --role R [--role ...]   a password generated and shown once,
                                                    or --password-prompt / --password-stdin
    overture users disable NAME | enable NAME       disabling ends their sessions
    overture users roles NAME --role R [--role ...] exactly these roles from now on
    overture users password NAME                    a new password (generated, prompted or
                                                    read); ends their sessions
    overture users unlock NAME                      lift the blocks failed logins put on
                                                    their account, from every address

Each takes --database (else $OVERTURE_DATABASE_URL, else ./overture.db) and does what the
design API's /v1/design/operators does, through the same service (`design.access`): the
same checks (the last active administrator stays), audited as `cli:$USER`.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from overture.cli._app import app, escape, fail, out
from overture.cli.server import DatabaseOption, cli_actor, direct

users_app = typer.Typer(
    no_args_is_help=True, help="Operators, directly in the database (administrators)."
)
app.add_typer(users_app, name="users")

NameArgument = Annotated[str, typer.Argument(help="The operator's login name.")]
RolesOption = Annotated[
    list[str],
    typer.Option(
        "--role",
        "-r",
        help="administrator, offer_manager, approver, deployer, delivery_manager or viewer; "
        "repeat for several.",
    ),
]
PasswordPrompt = Annotated[
    bool,
    typer.Option("--password-prompt", help="Ask for the password (twice) instead of making one."),
]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]


@users_app.command("list")
def users_list(
    database: DatabaseOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print them as JSON.")] = False,
) -> None:
    """Operators with their roles and whether they are disabled."""
    from overture.design import access

    with direct(database) as s:
        operators = [
            (op.name, sorted(op.role_names), op.disabled, op.created_at.isoformat())
            for op in access.list_operators(s)
        ]
    if as_json:
        keys = ("name", "roles", "disabled", "created_at")
        out.print_json(json.dumps([dict(zip(keys, op, strict=True)) for op in operators]))
        return
    table = Table(title=f"{len(operators)} operators", title_justify="left")
    for col in ("name", "roles", "status", "created"):
        table.add_column(col, overflow="fold")
    for name, roles, disabled, created in operators:
        table.add_row(
            escape(name),
            ", ".join(roles),
            "disabled" if disabled else "active",
            created[:16].replace("T", " "),
        )
    out.print(table)


@users_app.command("add")
def users_add(
    name: NameArgument,
    role: RolesOption,
    database: DatabaseOption = None,
    password_prompt: PasswordPrompt = False,
    password_stdin: PasswordStdin = False,
) -> None:
    """Add an operator. Without --password-prompt or --password-stdin a random password is
    made and printed once. Migrates the database first (it may be the first command run on
    it)."""
    from overture.design import access

    password, generated = _password(password_prompt, password_stdin)
    with direct(database, upgrade=True) as s:
        op = access.create_operator(s, cli_actor(), name, password, role)
        roles = sorted(op.role_names)
    out.print(f"Added [bold]{escape(name)}[/] ({', '.join(roles)}).")
    if generated:
        out.print(f"Password (shown once): [bold]{password}[/]", highlight=False)


@users_app.command("disable")
def users_disable(name: NameArgument, database: DatabaseOption = None) -> None:
    """Disable an operator: they can no longer log in, and their sessions end."""
    _set_disabled(name, database, disabled=True)


@users_app.command("enable")
def users_enable(name: NameArgument, database: DatabaseOption = None) -> None:
    """Enable a disabled operator again (with the password they had)."""
    _set_disabled(name, database, disabled=False)


@users_app.command("roles")
def users_roles(name: NameArgument, role: RolesOption, database: DatabaseOption = None) -> None:
    """Give an operator exactly these roles (those not named are taken away)."""
    from overture.design import access

    with direct(database) as s:
        before = sorted(access.operator(s, name).role_names)
        after = sorted(access.update_operator(s, cli_actor(), name, roles=role).role_names)
    if before == after:
        out.print(f"{escape(name)} already has these roles ({', '.join(after)}).")
    else:
        out.print(f"{escape(name)}: {', '.join(before)} → [bold]{', '.join(after)}[/].")


@users_app.command("password")
def users_password(
    name: NameArgument,
    database: DatabaseOption = None,
    password_prompt: PasswordPrompt = False,
    password_stdin: PasswordStdin = False,
) -> None:
    """Set an operator's password (a forgotten one, or after a leak): a random one printed
    once, unless --password-prompt or --password-stdin. Their sessions end."""
    from overture.design import access

    password, generated = _password(password_prompt, password_stdin)
    with direct(database) as s:
        access.update_operator(s, cli_actor(), name, password=password)
    out.print(f"Set a new password for [bold]{escape(name)}[/]; their sessions have ended.")
    if generated:
        out.print(f"Password (shown once): [bold]{password}[/]", highlight=False)


@users_app.command("unlock")
def users_unlock(name: NameArgument, database: DatabaseOption = None) -> None:
    """Lift the blocks that failed logins put on an operator's account, from every address
    (their password stays): when guessing keeps them out. Blocks end by themselves within
    15 minutes anyway; new failures count again from zero."""
    from overture.design import access

    with direct(database) as s:
        lifted = access.unlock(s, cli_actor(), name)
    out.print(
        f"Lifted {lifted} login block{'s' * (lifted != 1)} on [bold]{escape(name)}[/]."
        if lifted
        else f"No login block was on {escape(name)}; their failed logins are forgotten."
    )


def _set_disabled(name: str, database: str | None, *, disabled: bool) -> None:
    from overture.design import access

    state = "disabled" if disabled else "enabled"
    with direct(database) as s:
        if access.operator(s, name).disabled == disabled:
            out.print(f"{escape(name)} is already {state}.")
            return
        access.update_operator(s, cli_actor(), name, disabled=disabled)
    out.print(
        f"{state.capitalize()} [bold]{escape(name)}[/]"
        + ("; their sessions have ended." if disabled else ".")
    )


def _password(prompt: bool, stdin: bool) -> tuple[str, bool]:
    """The password to set, and whether it was made here (to be shown once)."""
    from overture.auth import new_password
    from overture.auth.secrets import MIN_PASSWORD_LENGTH

    if prompt and stdin:
        fail("[red]give --password-prompt or --password-stdin, not both[/]", 2)
    if not (prompt or stdin):
        return new_password(), True
    if stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt(
            f"Password ({MIN_PASSWORD_LENGTH} characters or more)",
            hide_input=True,
            confirmation_prompt=True,
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        fail(f"[red]the password must have at least {MIN_PASSWORD_LENGTH} characters[/]", 2)
    return password, False
