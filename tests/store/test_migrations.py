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


def test_upgrading_to_the_reports_counts_the_history_recorded_before(database: Database) -> None:
    """History recorded before the reports existed is in the rollup migration 0005 makes."""
    from overture.history import rollups

    downgrade(database, "0004")
    with database.engine.begin() as conn:
        for n, (offer, day) in enumerate(
            [("A", "2026-11-01"), ("A", "2026-11-01"), ("B", "2026-11-02")]
        ):
            conn.execute(
                text(
                    "INSERT INTO propositions (tracking_code, environment, deployment, audience, "
                    "placement, channel, offer_code, categories, rank, score, probability, "
                    "fallback, decided_at) VALUES (:code, 'staging', 1, 'customer', 'p', 'web', "
                    ":offer, 'cards lending', 1, 1.0, 1.0, false, :at)"
                ),
                {"code": f"t{n}", "offer": offer, "at": f"{day} 10:00:00"},
            )
        conn.execute(
            text(
                "INSERT INTO events (environment, event_id, name, kind, counted, tracking_code, "
                "offer_code, categories, channel, placement, at, received_at, attributes) VALUES "
                "('staging', 'e1', 'accepted', 'accepted', true, 't0', 'A', 'cards lending', "
                "'web', 'p', '2026-11-03 09:00:00', '2026-11-03 09:00:00', '{}')"
            )
        )
    upgrade(database)
    with database.engine.connect() as conn:
        kept = rollups.maintained(conn)
        assert kept == rollups.from_history(conn)
    assert ("staging", "2026-11-01", "A", "p", "web", "cards", "*", 2, 0, 0, 0) in kept
    assert ("staging", "2026-11-03", "A", "p", "web", "cards", "*", 0, 0, 1, 0) in kept
