"""`overture serve`, `overture db` and `overture users`: the first start as a new user
meets it (a separate process, as from a shell), and the database commands on both
databases."""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from overture.cli import app
from overture.demo import profiles
from overture.design import access
from overture.store import Database, migrate
from tests.deployed import Deployed
from tests.integration import redis_url

OVERTURE = str(Path(sys.executable).parent / "overture")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    def __init__(self, args: list[str], cwd: Path, *, new_session: bool = False) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "COLUMNS": "200"}
        env.pop("OVERTURE_DATABASE_URL", None)
        self.process = subprocess.Popen(
            [OVERTURE, "serve", "--port", str(self.port), *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=new_session,  # a process group of its own, as in a terminal
        )
        self.output = ""

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited: {self.process.stdout.read()}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("serve did not answer in time")

    def stop(self) -> str:
        self.process.terminate()
        out, _ = self.process.communicate(timeout=30)
        self.output += out
        return self.output


@pytest.fixture
def served(tmp_path: Path) -> Iterator[list[Served]]:
    started: list[Served] = []
    yield started
    for s in started:
        if s.process.poll() is None:
            s.stop()


@pytest.mark.slow
def test_first_start_creates_an_administrator_and_says_how_to_log_in(
    tmp_path: Path, served: list[Served]
) -> None:
    first = Served(["--demo"], tmp_path)  # the default database: ./overture.db
    served.append(first)
    first.wait_ready()
    output = first.stop()
    assert (tmp_path / "overture.db").exists()
    assert f"Overture on {first.url}" in output
    assert "Imported the demo catalog" in output
    assert "10,000 demo customers into table customers (C0000001…C0010000)" in output
    db = Database(str(tmp_path / "overture.db"))
    with db.session() as s:  # the customers are dated from today: the latest login was last night
        latest = s.execute(text("SELECT max(last_login) FROM customers")).scalar_one()
    db.dispose()
    assert str(profiles.today() - dt.timedelta(days=1)) <= str(latest) < str(profiles.today())
    password = re.search(r"the password\s+(\S+)", output)
    assert password, output
    assert f"overture login --url {first.url} --user admin" in output

    again = Served(["--demo"], tmp_path)  # a second start: no new administrator, no re-import
    served.append(again)
    again.wait_ready()
    login = httpx.post(
        f"{again.url}/v1/design/auth/login", json={"name": "admin", "password": password[1]}
    )
    assert login.status_code == 200, login.text
    token = login.json()["token"]
    offers = httpx.get(
        f"{again.url}/v1/design/offers",
        params={"status": "draft"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert offers.json()["total"] == 36
    output = again.stop()
    assert "the password" not in output and "Imported" not in output
    assert "--user NAME" in output


def test_serve_explains_an_unreachable_database(tmp_path: Path) -> None:
    result = subprocess.run(
        [OVERTURE, "serve", "--database", "postgresql://nobody@127.0.0.1:9/none"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "cannot connect to" in result.stderr


def test_db_commands_and_users_add(database: Database) -> None:
    runner = CliRunner(env={"COLUMNS": "200"})
    url = database.url
    result = runner.invoke(app, ["db", "current", "--database", url])
    assert result.exit_code == 0 and f"Schema at {migrate.head()}" in result.output

    result = runner.invoke(
        app,
        [
            "users",
            "add",
            "olga",
            "--role",
            "offer_manager",
            "--role",
            "approver",
            "--database",
            url,
        ],
    )
    assert result.exit_code == 0, result.output
    generated = re.search(r"Password \(shown once\): (\S+)", result.output)
    assert generated
    with database.session() as s:
        assert access.login(s, "olga", generated[1]).roles == ["approver", "offer_manager"]

    result = runner.invoke(
        app,
        ["users", "add", "abe", "-r", "approver", "--database", url, "--password-stdin"],
        input="a long enough passphrase\n",
    )
    assert result.exit_code == 0 and "shown once" not in result.output
    with database.session() as s:
        assert access.login(s, "abe", "a long enough passphrase").operator == "abe"

    for args, code, message in (
        (["users", "add", "olga", "-r", "viewer"], 1, "already exists"),  # the state refuses
        (["users", "add", "zed", "-r", "wizard"], 2, "wizard"),  # wrong input
    ):
        result = runner.invoke(app, [*args, "--database", url])
        assert result.exit_code == code and message in result.output, result.output
    result = runner.invoke(
        app,
        ["users", "add", "zed", "-r", "viewer", "--database", url, "--password-stdin"],
        input="short\n",
    )
    assert result.exit_code == 2 and "at least 10 characters" in result.output

    result = runner.invoke(app, ["db", "downgrade", "base", "--database", url, "--yes"])
    assert result.exit_code == 0 and "Schema at base" in result.output
    assert migrate.current(database) is None
    result = runner.invoke(app, ["db", "upgrade", "--database", url])
    assert result.exit_code == 0 and f"Schema at {migrate.head()} (was empty)" in result.output


@pytest.mark.integration
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_serve_keeps_its_redis_keys_under_the_prefix_it_is_given(
    demo: Deployed, tmp_path: Path, served: list[Served]
) -> None:
    """Nodes of another database on the same Redis need keys of their own: counters left
    under the default prefix by another database would be counted against this one's
    profiles (found by the runtime benchmark, whose fresh databases all met one Redis)."""
    import redis

    url = redis_url()
    prefix = f"test-prefix-{os.getpid()}"
    node = Served(
        ["--role", "runtime", "--database", demo.db.url, "--redis", url, "--redis-prefix", prefix],
        tmp_path,
    )
    served.append(node)
    node.wait_ready()
    answer = httpx.post(
        f"{node.url}/v1/decisions",
        headers={"X-API-Key": demo.key},
        json={"profile_id": "C0000001", "placements": [{"placement": "web_account_sidebar"}]},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["placements"][0]["offers"]
    client = redis.Redis.from_url(url)
    try:
        mine = list(client.scan_iter(f"{prefix}:staging:*"))
        assert f"{prefix}:staging:counters".encode() in mine
        assert f"{prefix}:staging:customer:C0000001:v".encode() in mine
        client.unlink(*mine)
    finally:
        client.close()
