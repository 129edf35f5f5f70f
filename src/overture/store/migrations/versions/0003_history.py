"""History: propositions and events, with the profile versions and inventory counters that
keep presentation policies exact across runtime nodes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "propositions",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("tracking_code", sa.String(length=64), nullable=False),
        sa.Column("environment", sa.String(length=64), nullable=False),
        sa.Column("deployment", sa.Integer(), nullable=False),
        sa.Column("audience", sa.String(length=64), nullable=False),
        sa.Column("profile_id", sa.String(length=128), nullable=True),
        sa.Column("session_id", sa.String(length=128), nullable=True),
        sa.Column("placement", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("offer_code", sa.String(length=64), nullable=False),
        sa.Column("categories", sa.String(length=2000), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("fallback", sa.Boolean(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tracking_code"),
    )
    op.create_index(
        "ix_propositions_profile", "propositions", ["environment", "profile_id", "decided_at"]
    )
    op.create_table(
        "events",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("environment", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("counted", sa.Boolean(), nullable=False),
        sa.Column("tracking_code", sa.String(length=64), nullable=True),
        sa.Column("audience", sa.String(length=64), nullable=True),
        sa.Column("profile_id", sa.String(length=128), nullable=True),
        sa.Column("session_id", sa.String(length=128), nullable=True),
        sa.Column("offer_code", sa.String(length=64), nullable=True),
        sa.Column("categories", sa.String(length=2000), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=True),
        sa.Column("placement", sa.String(length=64), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("environment", "event_id", name="uq_events_event_id"),
    )
    op.create_index("ix_events_profile", "events", ["environment", "profile_id", "at"])
    op.create_index("ix_events_tracking_code", "events", ["tracking_code"])
    op.create_table(
        "profile_versions",
        sa.Column("environment", sa.String(length=64), nullable=False),
        sa.Column("audience", sa.String(length=64), nullable=False),
        sa.Column("profile_id", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("environment", "audience", "profile_id"),
    )
    op.create_table(
        "inventory_counters",
        sa.Column("environment", sa.String(length=64), nullable=False),
        sa.Column("offer_code", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("environment", "offer_code", "period"),
    )


def downgrade() -> None:
    op.drop_table("inventory_counters")
    op.drop_table("profile_versions")
    op.drop_index("ix_events_tracking_code", table_name="events")
    op.drop_index("ix_events_profile", table_name="events")
    op.drop_table("events")
    op.drop_index("ix_propositions_profile", table_name="propositions")
    op.drop_table("propositions")
