"""Schemathesis against the design API's own OpenAPI description: generated requests for
every operation (bounded), as an administrator, on a database holding the demo catalog.
No request may get a 5xx answer, and every response must match the documented schema.

The application is built at import (schemathesis's lazy fixture mode relies on a pytest
internal that pytest 9 removed), in a temporary folder removed at exit.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import positive_data_acceptance

from overture.design import access, transfer
from overture.design.catalog import Actor
from overture.server import design_app
from overture.store import Database
from tests.design.api import PASSWORD
from tests.design.helpers import demo_files
from tests.integration import postgres_schema, postgres_url
from tests.schemathesis_checks import not_really_negative


def _sqlite() -> Database:
    folder = Path(tempfile.mkdtemp(prefix="overture-schemathesis-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return Database(str(folder / "overture.db"))


def _postgresql() -> Database | None:
    """A schema of its own in the test PostgreSQL (dropped at exit), if one is configured:
    PostgreSQL refuses inputs SQLite takes (NUL in text, 64-bit numbers in INTEGER)."""
    if not os.environ.get("OVERTURE_TEST_POSTGRES_URL"):
        return None
    context = postgres_schema()
    url = context.__enter__()
    db = Database(url)
    atexit.register(context.__exit__, None, None, None)
    atexit.register(db.dispose)
    return db


def _app(db: Database) -> Any:
    db.upgrade()
    with db.session() as s:
        access.create_operator(s, Actor("setup"), "root", PASSWORD, ["administrator"])
        transfer.import_catalog(s, Actor("setup"), demo_files())
    return design_app(db)


pytestmark = pytest.mark.slow

APP = _app(_sqlite())
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
_PG = _postgresql()
PG_APP = _app(_PG) if _PG is not None else None
pg_schema = schemathesis.openapi.from_asgi("/openapi.json", PG_APP or APP)


# CI runs a fixed, bounded set of examples (derandomized, so a red run is reproducible);
# OVERTURE_SCHEMATHESIS_EXAMPLES=150 explores further with fresh random examples.
_DEEP = int(os.environ.get("OVERTURE_SCHEMATHESIS_EXAMPLES", "0"))


SETTINGS = settings(
    max_examples=_DEEP or 12,
    derandomize=not _DEEP,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@schema.parametrize()
@SETTINGS
def test_no_server_errors(case: Any) -> None:
    _check(APP, case)


@pg_schema.parametrize()
@SETTINGS
def test_no_server_errors_on_postgresql(case: Any) -> None:
    if PG_APP is None:
        postgres_url()  # skips, saying which variable to set
    _check(PG_APP, case)


_LOGINS: dict[int, TestClient] = {}


def _login_client(app: Any) -> TestClient:
    """One client per app for the logins, kept open: one event loop thread for all of
    them rather than one started for each (thousands of cases)."""
    client = _LOGINS.get(id(app))
    if client is None:
        client = _LOGINS[id(app)] = TestClient(app).__enter__()
        atexit.register(client.__exit__)
    return client


def _check(app: Any, case: Any) -> None:
    login = _login_client(app).post(
        "/v1/design/auth/login", json={"name": "root", "password": PASSWORD}
    )
    token = login.json()["token"]  # a fresh one: a generated case may log out
    response = case.call(headers={"Authorization": f"Bearer {token}"})
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"
    # Every other check too, but "schema-valid data is accepted": the catalog has rules a
    # schema cannot express (references, rule types, workflow state), so such requests get
    # a 409 or a 422 listing what is wrong, by design.
    try:
        case.validate_response(response, excluded_checks=[positive_data_acceptance])
    except (Failure, FailureGroup) as exc:
        failures = list(exc.exceptions) if isinstance(exc, FailureGroup) else [exc]
        real = [f for f in failures if not not_really_negative(f, case)]
        if real:
            raise FailureGroup(real, f"{case.as_curl_command()}\nquery: {case.query}") from None
