"""The migration tests run the real migrations on a database of their own, for each test
(tests/conftest.py's `database` copies one migrated once per session)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from overture.store import Database
from tests.databases import fresh_database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database migrated for this test by `Database.upgrade()`: SQLite always, PostgreSQL
    when OVERTURE_TEST_POSTGRES_URL is set (in a schema of its own, dropped afterwards)."""
    with fresh_database(request.param, tmp_path) as db:
        yield db
