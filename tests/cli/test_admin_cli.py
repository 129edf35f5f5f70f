"""An administrator's commands on the database directly, no server, no login: `overture
users` (list, add, disable, enable, roles, password) and `overture keys --database` (add,
list, revoke), as the administrator of a bank runs them to bootstrap or recover."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from overture.auth.api_keys import environment_of_key
from overture.cli import app
from overture.design import access
from overture.design.catalog import Actor
from overture.design.errors import ServiceError
from overture.store import Database
from overture.store.models import AccessToken, AuditEntry

PASSWORD = "correct horse battery"
GENERATED = re.compile(r"Password \(shown once\): (\S+)")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(env={"COLUMNS": "200", "USER": "root-on-db1"})


def run(runner: CliRunner, database: Database, *args: str, stdin: str | None = None) -> str:
    """Run a command that must succeed; its output."""
    result = runner.invoke(app, [*args, "--database", database.url], input=stdin)
    assert result.exit_code == 0, result.output
    return result.output


def refused(runner: CliRunner, database: Database, *args: str, stdin: str | None = None) -> str:
    """Run a command that must be refused; its exit code and output, as one string."""
    result = runner.invoke(app, [*args, "--database", database.url], input=stdin)
    assert result.exit_code != 0, result.output
    return f"{result.exit_code} {result.output}"


def logs_in(database: Database, name: str, password: str) -> bool:
    with database.session() as s:
        try:
            access.login(s, name, password)
        except ServiceError:
            return False
    return True


def test_add_and_list_operators(runner: CliRunner, database: Database) -> None:
    output = run(runner, database, "users", "add", "ann", "-r", "administrator")
    assert "Added ann (administrator)." in output
    generated = GENERATED.search(output)
    assert generated and logs_in(database, "ann", generated[1])

    output = run(
        runner, database, "users", "add", "olga", "-r", "offer_manager", "--role", "approver",
        "--password-prompt", stdin=f"{PASSWORD}\n{PASSWORD}\n",
    )  # fmt: skip
    assert "Added olga (approver, offer_manager)." in output and "shown once" not in output
    assert PASSWORD not in output and logs_in(database, "olga", PASSWORD)
    run(runner, database, "users", "add", "abe", "-r", "viewer", "--password-stdin", stdin=PASSWORD)
    assert logs_in(database, "abe", PASSWORD)

    output = run(runner, database, "users", "list")
    assert re.search(r"ann\s+│ administrator\s+│ active", output), output
    assert re.search(r"olga\s+│ approver, offer_manager\s+│ active", output), output
    listed = json.loads(run(runner, database, "users", "list", "--json"))
    assert [(o["name"], o["roles"], o["disabled"]) for o in listed] == [
        ("abe", ["viewer"], False),
        ("ann", ["administrator"], False),
        ("olga", ["approver", "offer_manager"], False),
    ]
    with database.session() as s:  # audited as who ran the command
        actors = set(
            s.scalars(select(AuditEntry.operator).where(AuditEntry.action.like("operators.%")))
        )
    assert actors == {"cli:root-on-db1"}


def test_a_wrong_new_operator_is_explained(runner: CliRunner, database: Database) -> None:
    run(runner, database, "users", "add", "ann", "-r", "administrator")
    assert refused(runner, database, "users", "add", "ann", "-r", "viewer").startswith(
        "1 an operator named 'ann' already exists"
    )
    output = refused(runner, database, "users", "add", "zed", "-r", "wizard")
    assert output.startswith("2 unknown role 'wizard'; roles: administrator")
    output = refused(runner, database, "users", "add", "9lives", "-r", "viewer")
    assert output.startswith("2 '9lives' is not a valid operator name")
    output = run(
        runner,
        database,
        "users",
        "add",
        "zed",
        "-r",
        "viewer",
        "--password-prompt",
        stdin="long enough 1\nlong enough 2\nlong enough 3\nlong enough 3\n",
    )  # fmt: skip: typos are asked again
    assert "do not match" in output and logs_in(database, "zed", "long enough 3")
    output = refused(
        runner, database, "users", "add", "amy", "-r", "viewer", "--password-stdin", stdin="short"
    )
    assert output.startswith("2 the password must have at least 10 characters")
    output = refused(
        runner, database, "users", "add", "amy", "-r", "viewer", "--password-stdin",
        "--password-prompt",
    )  # fmt: skip
    assert output.startswith("2 give --password-prompt or --password-stdin, not both")


def test_disable_enable_change_roles_and_reset_a_password(
    runner: CliRunner, database: Database
) -> None:
    with database.session() as s:
        access.create_operator(s, Actor("setup"), "ann", PASSWORD, ["administrator"])
        access.create_operator(s, Actor("setup"), "dan", PASSWORD, ["deployer"])
    with database.session() as s:
        token = access.login(s, "dan", PASSWORD).token

    output = run(runner, database, "users", "disable", "dan")
    assert "Disabled dan; their sessions have ended." in output
    assert not logs_in(database, "dan", PASSWORD)
    with database.session() as s:
        assert access.authenticate(s, token) is None
        assert s.scalar(select(AccessToken.revoked_at)) is not None
    assert "dan is already disabled." in run(runner, database, "users", "disable", "dan")
    assert "disabled" in run(runner, database, "users", "list")
    assert "Enabled dan." in run(runner, database, "users", "enable", "dan")
    assert logs_in(database, "dan", PASSWORD)
    assert "dan is already enabled." in run(runner, database, "users", "enable", "dan")

    output = run(runner, database, "users", "roles", "dan", "-r", "deployer", "-r", "approver")
    assert "dan: deployer → approver, deployer." in output
    assert "already has these roles" in run(
        runner, database, "users", "roles", "dan", "-r", "approver", "-r", "deployer"
    )
    run(runner, database, "users", "roles", "dan", "-r", "viewer")
    with database.session() as s:
        assert access.operator(s, "dan").role_names == {"viewer"}

    output = run(runner, database, "users", "password", "dan")
    assert "Set a new password for dan; their sessions have ended." in output
    generated = GENERATED.search(output)
    assert generated and logs_in(database, "dan", generated[1])
    assert not logs_in(database, "dan", PASSWORD)
    output = run(
        runner, database, "users", "password", "dan", "--password-prompt",
        stdin=f"{PASSWORD}\n{PASSWORD}\n",
    )  # fmt: skip
    assert "shown once" not in output and logs_in(database, "dan", PASSWORD)
    run(runner, database, "users", "password", "ann", "--password-stdin", stdin="a new passphrase")
    assert logs_in(database, "ann", "a new passphrase")

    # the last active administrator stays one, and enabled
    for args in (("disable", "ann"), ("roles", "ann", "-r", "viewer")):
        output = refused(runner, database, "users", *args)
        assert output.startswith("1 ann is the last active administrator"), output
    for args in (
        ("disable", "nobody"),
        ("roles", "nobody", "-r", "viewer"),
        ("password", "nobody"),
    ):
        assert refused(runner, database, "users", *args).startswith("1 no operator 'nobody'")


def test_api_keys_per_environment(runner: CliRunner, database: Database) -> None:
    output = run(runner, database, "keys", "add", "--env", "staging", "--name", "web")
    assert "Created key #1 (web) for staging; it is shown only once:" in output
    web = output.split()[-1]
    run(runner, database, "keys", "add", "--env", "production", "--name", "app")
    with database.session() as s:
        assert environment_of_key(s, web) == "staging"
        created_by = select(AuditEntry.operator).where(AuditEntry.action == "api_keys.create")
        assert set(s.scalars(created_by)) == {"cli:root-on-db1"}
    output = run(runner, database, "keys", "list")
    assert "web" in output and "app" in output and web not in output
    output = run(runner, database, "keys", "list", "--env", "staging")
    assert "runtime API keys of staging" in output and "web" in output and "app" not in output

    assert "Revoked key #1." in run(runner, database, "keys", "revoke", "1")
    with database.session() as s:
        assert environment_of_key(s, web) is None
    assert "Key #1 was already revoked" in run(runner, database, "keys", "revoke", "1")
    output = run(runner, database, "keys", "list", "--env", "staging")
    assert re.search(r"web .* 20\d\d-\d\d-\d\dT", output), output  # its revocation time

    assert refused(runner, database, "keys", "revoke", "99").startswith("1 no API key 99")
    output = refused(runner, database, "keys", "add", "--env", "nowhere")
    assert output.startswith("1 no environment 'nowhere'")
    output = refused(runner, database, "keys", "list", "--url", "http://127.0.0.1:9")
    assert output.startswith("2 give --url (through the API) or --database (directly)")


def test_a_database_without_the_schema_is_explained(runner: CliRunner, tmp_path: Path) -> None:
    empty = Database(str(tmp_path / "empty.db"))
    for args in (("users", "list"), ("keys", "list"), ("users", "disable", "ann")):
        output = refused(runner, empty, *args)
        assert output.startswith("1 ") and "holds no Overture schema" in output, output
        assert "overture db upgrade" in output
    run(runner, empty, "users", "add", "ann", "-r", "administrator")  # add migrates first
    assert "ann" in run(runner, empty, "users", "list")
    empty.dispose()
