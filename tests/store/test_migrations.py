"""Migrations go up and down on both databases, and match the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from overture.store import Database
from overture.store.migrate import current, downgrade, head, upgrade
from overture.store.models import Base


def test_upgrade_creates_every_table_and_the_seeds(database: Database) -> None:
    assert current(database) == head()
    with database.engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        assert set(Base.metadata.tables) <= tables
        roles = conn.execute(text("SELECT name FROM roles ORDER BY name")).scalars().all()
        rows = conn.execute(text("SELECT name, requires FROM environments")).all()
    envs = {row[0]: row[1] for row in rows}
    assert roles == [
        "administrator",
        "approver",
        "delivery_manager",
        "deployer",
        "offer_manager",
        "viewer",
    ]
    assert envs == {"staging": None, "production": "staging"}


def test_models_and_migrations_agree(database: Database) -> None:
    with database.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_the_audit_log_is_append_only(database: Database) -> None:
    with database.session() as s:
        s.execute(
            text(
                "INSERT INTO audit_log (at, operator, action, kind, key) "
                "VALUES (CURRENT_TIMESTAMP, 'ann', 'test', '', '')"
            )
        )
    for statement in ("UPDATE audit_log SET operator = 'bob'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), database.session() as s:
            s.execute(text(statement))
    with database.session() as s:
        assert s.execute(text("SELECT operator FROM audit_log")).scalars().all() == ["ann"]


def test_downgrade_to_base_and_up_again(database: Database) -> None:
    downgrade(database, "base")
    with database.engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
    assert current(database) is None
    upgrade(database)
    assert current(database) == head()
