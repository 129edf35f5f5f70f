"""Each role sees what it may do, and a forged request for anything else is refused with
403 and changes nothing (the role matrix, overture.auth.roles, checked on the server)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from overture.auth import PERMISSIONS, ROLES, Permission
from overture.store import Database
from overture.store.models import AuditEntry
from tests.console.client import add_operators, console
from tests.deployed import Deployed

# (what, permission needed, path, form)
ACTIONS = [
    (
        "create an offer",
        Permission.AUTHOR,
        "offers",
        {"code": "X-1", "name": "X", "category": "cards"},
    ),
    ("preview content", Permission.AUTHOR, "offers/-/preview", {"code": "X", "name": "X"}),
    ("create a category", Permission.AUTHOR, "objects/categories", {"name": "newcat"}),
    ("create a channel", Permission.SETUP, "objects/channels", {"name": "kiosk"}),
    (
        "create a placement",
        Permission.SETUP,
        "objects/placements",
        {"name": "p1", "channel": "web"},
    ),
    ("delete a segment", Permission.AUTHOR, "objects/segments/young/delete", {"version": "1"}),
    ("submit an offer", Permission.AUTHOR, "offers/CC-GOLD/submit", {"version": "1"}),
    ("approve an offer", Permission.APPROVE, "offers/CC-GOLD/approve", {"version": "1"}),
    (
        "reject an offer",
        Permission.APPROVE,
        "offers/CC-GOLD/reject",
        {"version": "1", "comment": "no"},
    ),
    ("delete an offer", Permission.AUTHOR, "offers/CC-GOLD/delete", {"version": "1"}),
    ("deploy", Permission.DEPLOY, "deployments/staging/deploy", {"comment": "x"}),
    ("roll back", Permission.DEPLOY, "deployments/staging/rollback", {"to": "1"}),
    (
        "add an operator",
        Permission.OPERATORS,
        "operators",
        {"name": "mallory", "roles": "administrator"},
    ),
    (
        "change roles",
        Permission.OPERATORS,
        "operators/viewer",
        {"change": "roles", "roles": "administrator"},
    ),
    ("create an API key", Permission.API_KEYS, "api-keys", {"environment": "staging", "name": "k"}),
    ("revoke an API key", Permission.API_KEYS, "api-keys/1/revoke", {}),
    (
        "run a simulation",
        Permission.SIMULATE,
        "simulations",
        {"env": "staging", "placement": "web_home_hero"},
    ),
]
PAGES = [
    ("operators", Permission.OPERATORS),
    ("api-keys", Permission.API_KEYS),
    ("audit", Permission.AUDIT),
]


def _audit_count(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(AuditEntry)) or 0


@pytest.mark.parametrize("role", [r for r in ROLES if r != "administrator"])
def test_a_forged_request_for_what_the_role_may_not_do_is_refused_and_changes_nothing(
    demo: Deployed, role: str
) -> None:
    add_operators(demo.db)
    c = console(demo.db, role)
    for what, permission, path, form in ACTIONS:
        if role in PERMISSIONS[permission]:
            continue
        before = _audit_count(demo.db)
        response = c.post(path, form)
        assert response.status_code == 403, (role, what, response.status_code)
        assert "may not do this" in response.text, (role, what)
        assert _audit_count(demo.db) == before, (role, what)  # nothing was done
    for path, permission in PAGES:
        allowed = role in PERMISSIONS[permission]
        assert (c.get(path).status_code == 200) == allowed, (role, path)


@pytest.mark.parametrize("role", ROLES)
def test_the_navigation_and_buttons_show_what_the_role_may_do(demo: Deployed, role: str) -> None:
    add_operators(demo.db)
    c = console(demo.db, role)
    home = c.get("").text
    assert ('href="/console/operators"' in home) == (role == "administrator")
    offer = c.get("offers/CC-GOLD").text
    may_author = role in PERMISSIONS[Permission.AUTHOR]
    assert (">Save</button>" in offer) == may_author
    assert ("Delete offer CC-GOLD" in offer) == may_author
    environment = c.get("deployments/staging").text
    assert (">Deploy to staging</button>" in environment) == (
        role in PERMISSIONS[Permission.DEPLOY]
    )


def test_what_the_role_may_do_is_done(demo: Deployed) -> None:
    add_operators(demo.db)
    manager = console(demo.db, "offer_manager")
    response = manager.post("objects/categories", {"name": "newcat", "parent": "cards"})
    assert response.status_code == 303, response.text
    assert (
        console(demo.db, "administrator").post("objects/channels", {"name": "kiosk"}).status_code
        == 303
    )
