"""A console client for tests: the real console application, in-process, as a browser
without JavaScript uses it (forms, cookies, redirects), one operator per role."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starlette.testclient import TestClient

from overture.auth import ROLES
from overture.design import access
from overture.design.catalog import Actor
from overture.server import people_app
from overture.store import Database

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_MAIN_CSRF = re.compile(r'data-csrf="([^"]+)"')


def operator_name(role: str) -> str:
    return role.replace("_", "-")


def add_operators(db: Database) -> None:
    """An operator per role, named after it (offer-manager…), with PASSWORD."""
    with db.session() as s:
        for role in ROLES:
            access.create_operator(s, Actor("setup"), operator_name(role), PASSWORD, [role])


@dataclass
class Console:
    client: TestClient
    csrf: str = ""

    def login(self, name: str, password: str = PASSWORD) -> Any:
        page = self.client.get("/console/login")
        token = _CSRF.search(page.text)
        assert token, page.text
        response = self.client.post(
            "/console/login",
            data={"name": name, "password": password, "csrf": token[1], "next": ""},
            follow_redirects=False,
        )
        if response.status_code == 303:
            home = self.client.get("/console/")
            found = _MAIN_CSRF.search(home.text)
            assert found, home.text
            self.csrf = found[1]
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(f"/console/{path.lstrip('/')}", **kwargs)

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """A form post, with the session's CSRF token unless the data says otherwise."""
        body = {"csrf": self.csrf, **(data or {})}
        if body["csrf"] is None:
            del body["csrf"]
        kwargs.setdefault("follow_redirects", False)
        return self.client.post(f"/console/{path.lstrip('/')}", data=body, **kwargs)


def console(db: Database, role: str | None = None, **kwargs: Any) -> Console:
    """A client of the combined server's console, logged in as the role's operator."""
    client = TestClient(people_app(db), raise_server_exceptions=True, **kwargs)
    made = Console(client)
    if role is not None:
        response = made.login(operator_name(role))
        assert response.status_code == 303, response.text
    return made
