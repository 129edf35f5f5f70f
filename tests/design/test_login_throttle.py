"""Failed logins are throttled on every path that checks a password (the design API's
login and password change, the console's login form and password change), in the
database, and audited; blocks end by themselves, spare the addresses an account logs in
from, and `overture users unlock` lifts them. Time is moved by replacing throttle.clock."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, NamedTuple

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from overture.cli import app
from overture.design import access, throttle
from overture.design.catalog import Actor
from overture.server import design_app
from overture.store import Database
from overture.store.models import AuditEntry, utcnow
from tests.console.client import console

PASSWORD = "correct horse battery"
LOGIN = "/v1/design/auth/login"


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moved = Clock()
    monkeypatch.setattr(throttle, "clock", moved)
    return moved


@pytest.fixture
def ann(database: Database) -> Database:
    with database.session() as s:
        access.create_operator(s, Actor("setup"), "ann", PASSWORD, ["administrator"])
        access.create_operator(s, Actor("setup"), "bob", PASSWORD, ["viewer"])
    return database


def api(db: Database, address: str) -> TestClient:
    return TestClient(design_app(db), client=(address, 40000), raise_server_exceptions=True)


def login(client: TestClient, password: str, name: str = "ann") -> Any:
    return client.post(LOGIN, json={"name": name, "password": password})


class Entry(NamedTuple):
    operator: str
    key: str
    after: dict[str, Any]


def audit(db: Database, action: str) -> list[Entry]:
    """The audit log's entries of `action`, oldest first."""
    with db.session() as s:
        rows = s.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        )
        return [Entry(e.operator, e.key, e.after or {}) for e in rows]


def test_the_api_refuses_the_right_password_while_blocked_and_takes_it_after(
    ann: Database, clock: Clock
) -> None:
    attacker = api(ann, "203.0.113.5")
    assert [login(attacker, f"guess {i}").status_code for i in range(5)] == [401] * 5

    refused = login(attacker, PASSWORD)  # the 5th failure blocked this address on ann: 2 s
    assert refused.status_code == 429 and refused.headers["retry-after"] == "2"
    assert refused.json()["retry_after"] == 2 and "try again in 2 s" in refused.json()["detail"]
    clock.advance(1)
    assert login(attacker, PASSWORD).headers["retry-after"] == "1"
    clock.advance(1.5)
    assert login(attacker, PASSWORD).status_code == 200  # the block ended by itself

    # each failure past the 5th doubles the wait, and the login above forgot them all
    assert [login(attacker, f"again {i}").status_code for i in range(5)] == [401] * 5
    clock.advance(2.5)
    assert login(attacker, "and again").status_code == 401
    assert login(attacker, PASSWORD).headers["retry-after"] == "4"
    clock.advance(4.5)
    assert login(attacker, PASSWORD).status_code == 200

    failed = audit(ann, "login.failed")
    assert len(failed) == 11 and all(e.after == {"address": "203.0.113.5"} for e in failed)
    blocked = audit(ann, "login.blocked")
    assert [(e.key, e.after["scope"], e.after["seconds"]) for e in blocked] == [
        ("ann", "pair", 2),
        ("ann", "pair", 2),
        ("ann", "pair", 4),
    ]
    assert blocked[0].after["address"] == "203.0.113.5" and blocked[0].after["failures"] == 5


def test_no_block_lasts_longer_than_15_minutes(ann: Database, clock: Clock) -> None:
    attacker = api(ann, "203.0.113.5")
    waits = []
    for i in range(16):
        answer = login(attacker, f"guess {i}")
        if answer.status_code == 429:
            waits.append(int(answer.headers["retry-after"]))
            clock.advance(waits[-1])
            assert login(attacker, f"guess {i}").status_code == 401
    assert waits == [2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]
    assert login(attacker, PASSWORD).status_code == 429
    clock.advance(900)
    assert login(attacker, PASSWORD).status_code == 200


def test_another_address_logs_in_while_one_is_blocked(ann: Database, clock: Clock) -> None:
    attacker = api(ann, "203.0.113.5")
    for i in range(6):
        login(attacker, f"guess {i}")
    assert login(attacker, PASSWORD).status_code == 429
    assert login(api(ann, "198.51.100.7"), PASSWORD).status_code == 200


def test_guessing_from_many_addresses_spares_the_address_the_owner_logs_in_from(
    ann: Database, clock: Clock
) -> None:
    office = api(ann, "192.0.2.10")
    assert login(office, PASSWORD).status_code == 200
    for n in range(20):  # a botnet: each address fails once; the 20th blocks the account
        assert login(api(ann, f"203.0.113.{n}"), "guess").status_code == 401
    stranger = login(api(ann, "198.51.100.7"), PASSWORD)
    assert stranger.status_code == 429 and stranger.headers["retry-after"] == "2"
    assert login(office, PASSWORD).status_code == 200
    assert [e.after["scope"] for e in audit(ann, "login.blocked")] == ["account"]


def test_spraying_from_a_shared_address_spares_those_who_log_in_from_it(
    ann: Database, clock: Clock
) -> None:
    """One machine behind the office's NAT tries 20 accounts: the address is blocked for
    accounts that never logged in from it, not for bob, who did."""
    office = api(ann, "192.0.2.10")
    assert login(office, PASSWORD, name="bob").status_code == 200
    for n in range(20):
        assert login(office, "guess", name=f"user{n}").status_code == 401
    assert login(office, PASSWORD, name="ann").status_code == 429  # never logged in from here
    assert login(office, PASSWORD, name="bob").status_code == 200
    assert "address" in {e.after["scope"] for e in audit(ann, "login.blocked")}


def test_the_apis_password_change_checks_the_current_password_as_a_login(
    ann: Database, clock: Clock
) -> None:
    """A stolen token could guess the current password, unthrottled, to take the account
    over for good: the check is a login's now."""
    client = api(ann, "203.0.113.5")
    token = login(client, PASSWORD).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    new = {"new": "a brand new passphrase"}
    for i in range(5):
        wrong = client.put(
            "/v1/design/auth/password", json={"current": f"x{i}", **new}, headers=headers
        )
        assert wrong.status_code == 403 and "current password is wrong" in wrong.text
    refused = client.put(
        "/v1/design/auth/password", json={"current": PASSWORD, **new}, headers=headers
    )
    assert refused.status_code == 429 and refused.headers["retry-after"] == "2"
    assert len(audit(ann, "login.failed")) == 5
    assert [e.after["scope"] for e in audit(ann, "login.blocked")] == ["pair"]
    clock.advance(2)
    changed = client.put(
        "/v1/design/auth/password", json={"current": PASSWORD, **new}, headers=headers
    )
    assert changed.status_code == 204
    assert login(client, "a brand new passphrase").status_code == 200


def test_the_console_form_says_how_long_to_wait_and_lets_in_after(
    ann: Database, clock: Clock
) -> None:
    attacker = console(ann, client=("203.0.113.5", 40000))
    assert [attacker.login("ann", f"guess {i}").status_code for i in range(5)] == [401] * 5
    refused = attacker.login("ann")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "2"
    assert re.search(r"too many failed logins: try again in 2\xa0?\s?s", refused.text)
    assert 'value="ann"' in refused.text  # the form again, the name kept
    assert console(ann, client=("198.51.100.7", 40000)).login("ann").status_code == 303
    clock.advance(2)
    assert attacker.login("ann").status_code == 303
    assert [e.after["scope"] for e in audit(ann, "login.blocked")] == ["pair"]
    assert {e.after["address"] for e in audit(ann, "login.failed")} == {"203.0.113.5"}


def test_the_consoles_password_change_is_throttled_too(ann: Database, clock: Clock) -> None:
    me = console(ann, client=("203.0.113.5", 40000))
    assert me.login("ann").status_code == 303
    for i in range(5):
        page = me.post(
            "password", {"current": f"x{i}", "new": "a new passphrase", "again": "a new passphrase"}
        )
        assert page.status_code == 422 and "this is not your current password" in page.text
    page = me.post(
        "password", {"current": PASSWORD, "new": "a new passphrase", "again": "a new passphrase"}
    )
    assert page.status_code == 422 and "try again in 2" in page.text
    assert len(audit(ann, "login.failed")) == 5


def test_overture_users_unlock_lifts_the_blocks_on_an_account(ann: Database, clock: Clock) -> None:
    attacker = api(ann, "203.0.113.5")
    for i in range(6):
        login(attacker, f"guess {i}")
    assert login(attacker, PASSWORD).status_code == 429
    runner = CliRunner(env={"COLUMNS": "200", "USER": "root-on-db1"})
    result = runner.invoke(app, ["users", "unlock", "ann", "--database", ann.url])
    assert result.exit_code == 0, result.output
    assert "Lifted 1 login block on ann." in result.output
    assert login(attacker, PASSWORD).status_code == 200
    [entry] = audit(ann, "operators.unlock")
    assert (
        entry.operator == "cli:root-on-db1" and entry.key == "ann" and entry.after == {"lifted": 1}
    )
    result = runner.invoke(app, ["users", "unlock", "nobody", "--database", ann.url])
    assert result.exit_code == 1 and "no operator 'nobody'" in result.output
