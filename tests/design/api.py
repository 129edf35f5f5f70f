"""An API client for tests: the real application over HTTP semantics (httpx in-process),
with one operator per role."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from overture.auth import ROLES
from overture.design import access
from overture.design.catalog import Actor
from overture.server import design_app
from overture.store import Database

PASSWORD = "correct horse battery"


@dataclass
class Api:
    client: TestClient
    tokens: dict[str, str]  # role -> token of an operator holding only that role

    def as_(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def call(self, method: str, path: str, role: str = "administrator", **kwargs: Any) -> Any:
        headers = {**self.as_(role), **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)


def make_api(db: Database) -> Api:
    with db.session() as s:
        for role in ROLES:
            access.create_operator(s, Actor("setup"), role.replace("_", "-"), PASSWORD, [role])
    client = TestClient(design_app(db), raise_server_exceptions=False)
    tokens = {}
    for role in ROLES:
        response = client.post(
            "/v1/design/auth/login", json={"name": role.replace("_", "-"), "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        tokens[role] = response.json()["token"]
    return Api(client, tokens)
