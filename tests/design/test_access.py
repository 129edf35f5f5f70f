"""Operators, logins, tokens and API keys."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from overture.auth.api_keys import environment_of_key
from overture.design import access
from overture.design.errors import Conflict, ServiceError
from overture.store import Database
from overture.store.models import AccessToken, AuditEntry, Operator
from tests.design.helpers import ADMIN


def test_first_start_creates_one_administrator_with_a_random_password(database: Database) -> None:
    with database.session() as s:
        password = access.ensure_administrator(s)
        assert password is not None and len(password) >= 16
        assert access.ensure_administrator(s) is None
        admin = s.query(Operator).one()
        assert admin.name == "admin" and admin.role_names == {"administrator"}
        assert password not in admin.password_hash and admin.password_hash.startswith("$argon2id$")
        assert access.login(s, "admin", password).roles == ["administrator"]


def test_login_tokens_expire_and_can_be_revoked(database: Database) -> None:
    with database.session() as s:
        access.create_operator(s, ADMIN, "olga", "a long passphrase", ["offer_manager"])
        with pytest.raises(access.LoginFailed):
            access.login(s, "olga", "wrong password")
        with pytest.raises(access.LoginFailed):
            access.login(s, "nobody", "a long passphrase")
        session = access.login(s, "olga", "a long passphrase")
        assert session.token.startswith("ovt_")
        assert access.authenticate(s, session.token).name == "olga"  # type: ignore[union-attr]
        stored = s.query(AccessToken).one()
        assert stored.token_hash != session.token  # only the hash is kept
        access.logout(s, session.token)
        assert access.authenticate(s, session.token) is None
        short = access.login(s, "olga", "a long passphrase", lifetime=dt.timedelta(seconds=-1))
        assert access.authenticate(s, short.token) is None


def test_disabling_or_a_new_password_ends_sessions(database: Database) -> None:
    with database.session() as s:
        access.create_operator(s, ADMIN, "abe", "first passphrase", ["approver"])
        token = access.login(s, "abe", "first passphrase").token
        access.update_operator(s, ADMIN, "abe", password="second passphrase")
        assert access.authenticate(s, token) is None
        token = access.login(s, "abe", "second passphrase").token
        access.update_operator(s, ADMIN, "abe", disabled=True)
        assert access.authenticate(s, token) is None
        with pytest.raises(access.LoginFailed):
            access.login(s, "abe", "second passphrase")


def test_operators_need_known_roles_and_a_real_password(database: Database) -> None:
    with database.session() as s:
        with pytest.raises(ServiceError, match="unknown role 'boss'"):
            access.create_operator(s, ADMIN, "x", "a long passphrase", ["boss"])
        with pytest.raises(ServiceError, match="at least 10 characters"):
            access.create_operator(s, ADMIN, "x", "short", ["viewer"])
        access.create_operator(s, ADMIN, "x", "a long passphrase", ["viewer", "deployer"])
        with pytest.raises(Conflict):
            access.create_operator(s, ADMIN, "X", "a long passphrase", ["viewer"])


def test_api_keys_are_scoped_to_one_environment_and_revocable(database: Database) -> None:
    with database.session() as s:
        new = access.create_api_key(s, ADMIN, "staging", "web site")
        assert new.key.startswith("ovk_") and new.record.key_hash != new.key
        assert environment_of_key(s, new.key) == "staging"
        assert environment_of_key(s, new.key + "x") is None
        access.revoke_api_key(s, ADMIN, new.record.id)
        assert environment_of_key(s, new.key) is None


def test_failed_logins_are_audited_even_though_the_request_fails(database: Database) -> None:
    with database.session() as s:
        access.create_operator(s, ADMIN, "olga", "a long passphrase", ["offer_manager"])
        access.create_operator(s, ADMIN, "old", "a long passphrase", ["viewer"])
        access.update_operator(s, ADMIN, "old", disabled=True)
    for name, password in (("olga", "wrong"), ("nobody", "x"), ("old", "a long passphrase")):
        # as a request does it: the session rolls back when the error leaves it
        with (
            pytest.raises(access.LoginFailed, match="wrong name or password"),
            database.session() as s,
        ):
            access.login(s, name, password)
    with database.session() as s:
        failed = s.scalars(select(AuditEntry.key).where(AuditEntry.action == "login.failed")).all()
    assert sorted(failed) == ["nobody", "old", "olga"]


def test_the_last_administrator_cannot_be_removed(database: Database) -> None:
    with database.session() as s:
        access.create_operator(s, ADMIN, "ann", "a long passphrase", ["administrator"])
        with pytest.raises(Conflict, match="last active administrator"):
            access.update_operator(s, ADMIN, "ann", roles=["viewer"])
        with pytest.raises(Conflict, match="last active administrator"):
            access.update_operator(s, ADMIN, "ann", disabled=True)
        access.create_operator(s, ADMIN, "bob", "a long passphrase", ["administrator"])
        access.update_operator(s, ADMIN, "ann", roles=["viewer"])  # bob remains
        with pytest.raises(Conflict, match="last active administrator"):
            access.update_operator(s, ADMIN, "bob", disabled=True)


def test_changing_my_password_keeps_this_session_and_ends_the_others(
    database: Database,
) -> None:
    with database.session() as s:
        access.create_operator(s, ADMIN, "abe", "first passphrase", ["approver"])
        here = access.login(s, "abe", "first passphrase").token
        elsewhere = access.login(s, "abe", "first passphrase").token
        access.update_operator(s, ADMIN, "abe", password="second passphrase", keep_token=here)
        assert access.authenticate(s, here) is not None
        assert access.authenticate(s, elsewhere) is None


@pytest.mark.parametrize("name", ["bad name", "a/b", "9lives", "x" * 65, ""])
def test_operator_names_are_checked_whoever_creates_them(database: Database, name: str) -> None:
    with database.session() as s, pytest.raises(ServiceError, match="not a valid operator name"):
        access.create_operator(s, ADMIN, name, "a long passphrase", ["viewer"])
