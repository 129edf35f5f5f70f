"""Shared test configuration.

Hypothesis profiles: `default` keeps the suite fast; `HYPOTHESIS_PROFILE=deep` runs far
more examples when hunting for disagreements between the engines.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from overture.store import Database
from tests.integration import postgres_schema

settings.register_profile("default", deadline=None)
settings.register_profile(
    "deep", deadline=None, max_examples=3000, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated database: SQLite always, PostgreSQL when OVERTURE_TEST_POSTGRES_URL is set
    (in a schema of its own, dropped afterwards)."""
    if request.param == "sqlite":
        db = Database(str(tmp_path / "overture.db"))
        db.upgrade()
        yield db
        db.dispose()
        return
    with postgres_schema() as url:
        db = Database(url)
        db.upgrade()
        yield db
        db.dispose()


@pytest.fixture(autouse=True, scope="session")
def _cheaper_password_hashing() -> Iterator[None]:
    """argon2id with small costs: the same algorithm and code paths, without spending
    140 ms per hash in every test that logs in."""
    from argon2 import PasswordHasher

    from overture.auth import secrets

    real = secrets._hasher
    secrets._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    secrets._hasher = real
