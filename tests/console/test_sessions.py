"""Logging in and out, the session cookie, idle expiry, CSRF and login throttling."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select, update

from overture.console import sessions
from overture.store import Database
from overture.store.models import AuditEntry, ConsoleSession, LoginAttempts, OfferRow
from tests.console.client import PASSWORD, Console, add_operators, console


def test_every_page_sends_a_stranger_to_the_login_page(database: Database) -> None:
    c = console(database)
    for path in ("", "catalog", "offers/X", "approvals", "deployments", "decide", "audit"):
        response = c.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/console/login?next=/console/")
    assert c.client.get("/", follow_redirects=False).headers["location"] == "/console/"


def test_login_sets_a_signed_httponly_strict_cookie_and_logout_ends_it_on_the_server(
    database: Database,
) -> None:
    add_operators(database)
    c = console(database)
    response = c.login("viewer")
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert sessions.COOKIE in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    home = c.get("")
    assert home.status_code == 200
    assert "viewer" in home.text  # the header names the operator and the role
    value = c.client.cookies[sessions.COOKIE]

    assert c.post("logout").status_code == 303
    # the same cookie, replayed after logout, opens nothing: the server ended the session
    c.client.cookies.set(sessions.COOKIE, value, path="/console")
    assert c.get("", follow_redirects=False).status_code == 303
    with database.session() as s:
        row = s.scalars(select(ConsoleSession)).one()
        assert row.revoked_at is not None


def test_a_tampered_cookie_is_refused(database: Database) -> None:
    add_operators(database)
    c = console(database, "viewer")
    value = c.client.cookies[sessions.COOKIE]
    token, _, signature = value.rpartition(".")
    c.client.cookies.clear()
    c.client.cookies.set(sessions.COOKIE, f"{token}x.{signature}", path="/console")
    assert c.get("", follow_redirects=False).status_code == 303


def test_a_session_ends_after_its_idle_time(database: Database) -> None:
    add_operators(database)
    c = console(database, "viewer")
    assert c.get("", follow_redirects=False).status_code == 200
    with database.session() as s:
        s.execute(
            update(ConsoleSession).values(
                last_seen_at=dt.datetime.now(dt.UTC).replace(tzinfo=None) - sessions.IDLE * 2
            )
        )
    response = c.get("catalog", follow_redirects=False)
    assert response.status_code == 303 and "/console/login" in response.headers["location"]


def test_wrong_password_says_so_and_is_audited(database: Database) -> None:
    add_operators(database)
    c = console(database)
    response = c.login("viewer", "not the password")
    assert response.status_code == 401
    assert "wrong name or password" in response.text
    with database.session() as s:
        actions = s.scalars(select(AuditEntry.action)).all()
    assert "login.failed" in actions


def test_a_form_without_the_sessions_csrf_token_changes_nothing(database: Database) -> None:
    add_operators(database)
    c = console(database, "administrator")
    data = {"code": "NEW-1", "name": "New", "category": "x"}
    for token in (None, "forged", ""):
        response = c.post("offers", {**data, "csrf": token})
        assert response.status_code == 403, token
        assert "CSRF" in response.text
    with database.session() as s:
        assert s.scalar(select(OfferRow).where(OfferRow.code == "NEW-1")) is None
    # another session's token does not do either
    other = console(database, "administrator")
    assert c.post("offers", {**data, "csrf": other.csrf}).status_code == 403


def test_the_login_form_has_its_own_csrf_token(database: Database) -> None:
    add_operators(database)
    c = console(database)
    response = c.client.post(
        "/console/login", data={"name": "viewer", "password": PASSWORD, "csrf": "made-up"}
    )
    assert response.status_code == 403
    assert sessions.COOKIE not in c.client.cookies


def test_failed_logins_slow_down_an_address_but_never_lock_the_owner_out(
    database: Database,
) -> None:
    add_operators(database)
    attacker = console(database)
    statuses = [attacker.login("administrator", f"guess {i}").status_code for i in range(7)]
    assert statuses[:5] == [401] * 5  # the first failures are answered as such
    throttled = attacker.login("administrator", PASSWORD)
    assert throttled.status_code == 429  # even the right password waits now
    assert int(throttled.headers["retry-after"]) >= 1
    assert "try again in" in throttled.text

    # the throttle is per address: the administrator at another desk logs in
    owner = console(database, client=("10.0.0.7", 50000))
    assert owner.login("administrator").status_code == 303
    with database.session() as s:
        scopes = {row.scope for row in s.scalars(select(LoginAttempts))}
    assert scopes == {"pair", "address", "account"}


def test_many_addresses_guessing_one_account_do_not_lock_out_its_known_address(
    database: Database,
) -> None:
    add_operators(database)
    home = ("10.0.0.1", 40000)
    assert console(database, client=home).login("administrator").status_code == 303
    for n in range(25):  # a botnet: each address fails once
        guesser = console(database, client=(f"10.9.{n}.1", 40000))
        assert guesser.login("administrator", "wrong password").status_code in (401, 429)
    newcomer = console(database, client=("10.8.8.8", 40000))
    assert newcomer.login("administrator").status_code == 429  # the account is closed to strangers
    assert console(database, client=home).login("administrator").status_code == 303


def test_a_password_reset_lifts_the_accounts_throttle(database: Database) -> None:
    add_operators(database)
    locked = console(database)
    for _ in range(6):
        locked.login("viewer", "wrong password")
    assert locked.login("viewer").status_code == 429
    admin = console(database, "administrator", client=("10.0.0.9", 1))
    page = admin.post("operators/viewer", {"change": "password"})
    new = re.search(r'<code id="new-password">([^<]+)</code>', page.text)
    assert new
    assert locked.login("viewer", new[1]).status_code == 303


def test_failed_logins_at_the_same_moment_are_all_counted(database: Database) -> None:
    from concurrent.futures import ThreadPoolExecutor

    add_operators(database)
    clients = [console(database) for _ in range(16)]

    def guess(c: Console) -> int:
        return int(c.login("viewer", "wrong password").status_code)

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(guess, clients))
    # the first five attempts of one address on one account are checked, no more, however
    # many arrive at once; the others wait (and nothing failed with a 500)
    assert statuses.count(401) == 5
    assert statuses.count(429) == 11
    with database.session() as s:
        pair = s.scalars(select(LoginAttempts).where(LoginAttempts.scope == "pair")).one()
        assert pair.failures == 5
