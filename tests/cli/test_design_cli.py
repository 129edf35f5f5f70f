"""The operator's walk-through on the command line, against a real design API server (over
TCP) on SQLite and PostgreSQL: log in, import the demo catalog, submit and approve, plan,
deploy to staging then production, change an offer, roll back; each step as the role that
does it in a bank, and each refusal as the operator would see it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from overture.auth.api_keys import environment_of_key
from overture.cli import app
from overture.demo import CATALOG_PATH
from overture.design import access
from overture.design.catalog import Actor
from overture.store import Database
from tests.design.api import PASSWORD
from tests.design.server import live_server

OPERATORS = {
    "ann": "administrator",
    "olga": "offer_manager",
    "abe": "approver",
    "dan": "deployer",
    "vic": "viewer",
}


@pytest.fixture
def cli(database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    with database.session() as s:
        for name, role in OPERATORS.items():
            access.create_operator(s, Actor("setup"), name, PASSWORD, [role])
    monkeypatch.setenv("OVERTURE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("OVERTURE_TOKEN", raising=False)
    with live_server(database) as url:
        monkeypatch.setenv("OVERTURE_URL", url)
        yield CliRunner(env={"COLUMNS": "200"})


def run(runner: CliRunner, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), input=stdin)
    return result.exit_code, result.output


def login(runner: CliRunner, name: str) -> None:
    code, output = run(runner, "login", "--user", name, "--password-stdin", stdin=PASSWORD)
    assert code == 0, output
    assert f"as {name} ({OPERATORS[name]})" in output


@pytest.mark.slow
def test_walk_through(cli: CliRunner, tmp_path: Path) -> None:
    login(cli, "ann")
    code, output = run(cli, "catalog", "import", str(CATALOG_PATH))
    assert code == 0, output
    assert "offers" in output and "36: ACC-STUDENT" in output

    # nothing is approved yet: a deployment is refused, with every problem located
    code, output = run(cli, "deploy", "--env", "staging")
    assert code == 1
    assert "36 offer(s) have no approved revision yet" in output
    assert "treatment_rules[affluent-premium].offers[0]: unknown offer 'ACC-PREMIER'" in output

    login(cli, "olga")
    code, output = run(cli, "offers", "submit", "--all")
    assert code == 0 and "Submitted 36 offers" in output, output
    code, output = run(cli, "offers", "approve", "CC-GOLD")
    assert code == 1 and "not allowed" in output.lower(), output  # an offer manager cannot

    login(cli, "abe")
    code, output = run(cli, "offers", "approve", "--all", "--comment", "Q4 review")
    assert code == 0 and "Approved 36 offers" in output, output

    login(cli, "dan")
    code, output = run(cli, "plan", "--env", "staging", "--json")
    plan = json.loads(output)
    assert code == 0 and plan["current"] is None and len(plan["changes"]["offers"]["added"]) == 36
    code, output = run(cli, "plan", "--env", "production")
    assert code == 0 and "has not run on staging" in output
    code, output = run(cli, "deploy", "--env", "production")
    assert code == 1 and "has not run on staging yet" in output
    code, output = run(cli, "deploy", "--env", "staging", "--comment", "first release")
    assert code == 0 and "Deployed staging #1" in output and "36 offers" in output
    code, output = run(cli, "deploy", "--env", "production", "--comment", "first release")
    assert code == 0 and "Deployed production #1" in output

    # an offer manager changes an approved offer: a pending revision; the approved one stays
    login(cli, "olga")
    folder = tmp_path / "edited"
    assert run(cli, "catalog", "export", str(folder))[0] == 0
    offers = folder / "offers.yaml"
    text = offers.read_text()
    assert "name: Gold credit card" in text
    offers.write_text(text.replace("name: Gold credit card", "name: Gold card, now 0% for 6m"))
    code, output = run(cli, "catalog", "import", str(folder))
    assert code == 1 and "not allowed" in output.lower()  # importing is an administrator's job
    login(cli, "ann")
    code, output = run(cli, "catalog", "import", str(folder))
    assert code == 0 and "1: CC-GOLD" in output, output
    code, output = run(cli, "offers", "list", "--status", "pending", "--json")
    [pending] = json.loads(output)
    assert pending["key"] == "CC-GOLD" and pending["approved_revision"] == 1
    assert pending["live"] == {"staging": 1, "production": 1}

    code, output = run(cli, "plan", "--env", "staging", "--json")
    assert json.loads(output)["unchanged"] is True  # the pending revision does not deploy
    login(cli, "abe")
    assert run(cli, "offers", "approve", "CC-GOLD")[0] == 0
    login(cli, "dan")
    code, output = run(cli, "plan", "--env", "staging", "--json")
    assert json.loads(output)["changes"]["offers"]["changed"] == ["CC-GOLD"]
    code, output = run(cli, "deploy", "--env", "staging", "--comment", "gold promo")
    assert code == 0 and "Deployed staging #2" in output
    code, output = run(cli, "deploy", "--env", "production", "--force")
    assert code == 0 and "production #2" in output  # it ran on staging: no force needed

    code, output = run(cli, "rollback", "--env", "production", "--to", "1", "--comment", "undo")
    assert code == 0 and "now deployment #3" in output, output
    code, output = run(cli, "deployments", "--env", "production", "--json")
    history = json.loads(output)
    assert [d["number"] for d in history] == [3, 2, 1]
    assert (
        history[0]["rollback_of"] == 1 and history[0]["content_hash"] == history[2]["content_hash"]
    )
    code, output = run(cli, "deployments", "--env", "production")
    assert "rollback to #1" in output and "undo" in output
    code, output = run(cli, "environments")
    assert code == 0 and "#3" in output and "#2" in output

    code, output = run(cli, "logout")
    assert code == 0
    code, output = run(cli, "whoami")
    assert code == 1 and "not logged in" in output


def test_a_broken_catalog_changes_nothing(cli: CliRunner, tmp_path: Path) -> None:
    login(cli, "ann")
    assert run(cli, "catalog", "import", str(CATALOG_PATH))[0] == 0
    broken = tmp_path / "broken"
    broken.mkdir()
    for source in CATALOG_PATH.glob("*.yaml"):
        (broken / source.name).write_text(source.read_text())
    offers = broken / "offers-banking.yaml"
    offers.write_text(offers.read_text().replace("income >= 40000", "incme >= 40000", 1))
    code, output = run(cli, "catalog", "import", str(broken))
    assert code == 1
    assert "unknown profile field 'incme'" in output and "offers-banking.yaml:129" in output
    code, output = run(cli, "catalog", "import", str(CATALOG_PATH))
    assert code == 0 and "nothing changed" in output


def test_refusals_read_clearly(cli: CliRunner, tmp_path: Path) -> None:
    code, output = run(cli, "plan", "--env", "staging")
    assert code == 1 and "not logged in" in output and "overture login" in output
    code, output = run(cli, "login", "--user", "ann", "--password-stdin", stdin="wrong")
    assert code == 1 and "wrong name or password" in output
    login(cli, "vic")
    code, output = run(cli, "deploy", "--env", "staging")
    assert code == 1 and "403" in output
    code, output = run(cli, "plan", "--env", "nowhere")
    assert code == 1 and "no environment 'nowhere'" in output
    code, output = run(cli, "offers", "submit")
    assert code == 2 and "--all" in output
    code, output = run(cli, "catalog", "import", str(tmp_path / "missing"))
    assert code == 2 and "does not exist" in output
    code, output = run(cli, "whoami", "--url", "http://127.0.0.1:9")
    assert code == 1 and "not logged in to http://127.0.0.1:9" in output


@pytest.fixture
def not_the_api() -> Iterator[str]:
    """Some other HTTP service: answers every request with JSON that is not ours."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = b'{"hello": "world"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_odd_surroundings_get_a_message_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, not_the_api: str
) -> None:
    runner = CliRunner(env={"COLUMNS": "200"})
    config = tmp_path / "config"
    monkeypatch.setenv("OVERTURE_CONFIG_DIR", str(config))
    monkeypatch.delenv("OVERTURE_URL", raising=False)
    config.mkdir()
    (config / "credentials.json").write_text(
        json.dumps({"current": not_the_api, "servers": {not_the_api: {"operator": "x"}}})
    )
    code, output = run(runner, "whoami")
    assert code == 1 and "not logged in" in output  # a saved entry without a token

    monkeypatch.setenv("OVERTURE_TOKEN", "ovt_t\u00f6k")
    code, output = run(runner, "whoami")
    assert code == 1 and "log in again" in output

    monkeypatch.setenv("OVERTURE_TOKEN", "ovt_token")
    for args in (["whoami"], ["plan", "--env", "staging"], ["deployments", "--env", "x"]):
        code, output = run(runner, *args)
        assert code == 1 and "is the URL the Overture design API?" in output, output
    code, output = run(runner, "login", "--user", "ann", "--password-stdin", stdin="pw")
    assert code == 1 and "is the URL the Overture design API?" in output
    code, output = run(runner, "whoami", "--url", "http://[::1")
    assert code == 1 and "not a usable URL" in output

    code, output = run(runner, "db", "current", "--database", "foo://bar")
    assert code == 2 and "cannot use the database URL" in output


def test_runtime_keys(cli: CliRunner, database: Database) -> None:
    login(cli, "ann")
    code, output = run(cli, "keys", "add", "--env", "staging", "--name", "web")
    assert code == 0, output
    key = output.split()[-1]
    assert key.startswith("ovk_")
    with database.session() as s:
        assert environment_of_key(s, key) == "staging"
    code, output = run(cli, "keys", "list")
    assert code == 0 and "web" in output and key not in output
    code, output = run(cli, "keys", "list", "--env", "production")
    assert code == 0 and "of production" in output and "web" not in output
    code, output = run(cli, "keys", "revoke", "1")
    assert code == 0 and "Revoked key #1" in output
    with database.session() as s:
        assert environment_of_key(s, key) is None
    login(cli, "olga")
    code, output = run(cli, "keys", "add", "--env", "staging")
    assert code == 1 and "administrator" in output
