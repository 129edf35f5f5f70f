"""Every design endpoint × every role: allowed, or 403.

EXPECTED is the access policy, written out: an endpoint missing from it (a new one), or a
route declaring another permission than it says, fails the suite.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute

from overture.auth import PERMISSIONS, ROLES, Permission
from overture.server import design_app
from overture.store import Database
from tests.design.api import Api, make_api

P = Permission
PUBLIC = None
EXPECTED: dict[str, Permission | None] = {
    "POST /v1/design/auth/login": PUBLIC,
    "POST /v1/design/auth/logout": P.SELF,
    "GET /v1/design/auth/me": P.SELF,
    "PUT /v1/design/auth/password": P.SELF,
    "GET /v1/design/operators": P.OPERATORS,
    "POST /v1/design/operators": P.OPERATORS,
    "GET /v1/design/operators/{name}": P.OPERATORS,
    "PATCH /v1/design/operators/{name}": P.OPERATORS,
    "GET /v1/design/api-keys": P.API_KEYS,
    "POST /v1/design/api-keys": P.API_KEYS,
    "DELETE /v1/design/api-keys/{key_id}": P.API_KEYS,
    **{
        f"{method} /v1/design/{kind}{suffix}": permission
        for kind, write in (
            ("audiences", P.SETUP),
            ("channels", P.SETUP),
            ("zones", P.SETUP),
            ("placements", P.SETUP),
            ("categories", P.AUTHOR),
            ("segments", P.AUTHOR),
            ("treatment-rules", P.AUTHOR),
            ("policies", P.SETUP),
            ("offers", P.AUTHOR),
        )
        for method, suffix, permission in (
            ("GET", "", P.READ),
            ("POST", "", write),
            ("GET", "/{key}", P.READ),
            ("PUT", "/{key}", write),
            ("DELETE", "/{key}", write),
        )
    },
    "GET /v1/design/settings": P.READ,
    "PUT /v1/design/settings": P.SETUP,
    "GET /v1/design/offers/{code}/revisions": P.READ,
    "POST /v1/design/offers/{code}/submit": P.AUTHOR,
    "POST /v1/design/offers/{code}/withdraw": P.AUTHOR,
    "POST /v1/design/offers/{code}/approve": P.APPROVE,
    "POST /v1/design/offers/{code}/reject": P.APPROVE,
    "GET /v1/design/environments": P.READ,
    "POST /v1/design/environments": P.ENVIRONMENTS,
    "GET /v1/design/environments/{name}": P.READ,
    "GET /v1/design/environments/{name}/plan": P.READ,
    "GET /v1/design/environments/{name}/deployments": P.READ,
    "POST /v1/design/environments/{name}/deployments": P.DEPLOY,
    "GET /v1/design/environments/{name}/deployments/{number}": P.READ,
    "POST /v1/design/environments/{name}/rollback": P.DEPLOY,
    "POST /v1/design/environments/{name}/simulations": P.SIMULATE,
    "GET /v1/design/environments/{name}/reports/{by}": P.READ,
    "POST /v1/design/catalog/import": P.IMPORT,
    "GET /v1/design/catalog/export": P.READ,
    "GET /v1/design/audit": P.AUDIT,
}
# offers use {code}, not {key}
EXPECTED = {k.replace("offers/{key}", "offers/{code}"): v for k, v in EXPECTED.items()}
PATH_VALUES = {
    "key": "nothing-here",
    "code": "NOTHING",
    "name": "staging",
    "number": "1",
    "key_id": "999999",
    "by": "offer",
}


def _routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every API route, also inside included routers."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from _routes(route.original_router.routes)


def _declared(dependant: Any) -> Permission | None:
    for dependency in dependant.dependencies:
        found: Permission | None = getattr(dependency.call, "permission", None)
        found = found or _declared(dependency)
        if found is not None:
            return found
    return None


def _endpoints() -> dict[str, Permission | None]:
    app = design_app(Database("sqlite://"))
    return {
        f"{method} {route.path}": _declared(route.dependant)
        for route in _routes(app.routes)
        for method in route.methods or ()
    }


def test_every_endpoint_has_the_permission_the_policy_says() -> None:
    declared = _endpoints()
    assert sorted(set(declared) - set(EXPECTED)) == [], "endpoints missing from EXPECTED"
    assert sorted(set(EXPECTED) - set(declared)) == [], "EXPECTED names endpoints that are gone"
    assert declared == EXPECTED


@pytest.fixture
def api(database: Database) -> Api:
    return make_api(database)


@pytest.mark.slow
def test_each_role_is_allowed_exactly_where_the_policy_says(api: Api) -> None:
    wrong = []
    endpoints = sorted(EXPECTED.items(), key=lambda kv: kv[0].endswith("/logout"))  # last
    for endpoint, permission in endpoints:
        method, template = endpoint.split(" ")
        path = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], template)
        for role in ROLES:
            kwargs: dict[str, Any] = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
            status = api.call(method, path, role, **kwargs).status_code
            allowed = permission is None or role in PERMISSIONS[permission]
            if (status == 403) == allowed or status in (401, 500):
                wrong.append(f"{endpoint} as {role}: {status}")
    assert wrong == []
