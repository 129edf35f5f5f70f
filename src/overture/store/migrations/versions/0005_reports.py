"""Offer performance: the segments a proposition was decided with (and its events carry),
and the daily rollup the reports read.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 06:00:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "propositions",
        sa.Column("segments", sa.String(length=2000), server_default="", nullable=False),
    )
    op.add_column(
        "events", sa.Column("segments", sa.String(length=2000), server_default="", nullable=False)
    )
    op.create_index("ix_propositions_time", "propositions", ["environment", "decided_at"])
    op.create_index("ix_events_time", "events", ["environment", "at"])
    op.create_table(
        "report_daily",
        sa.Column("environment", sa.String(length=64), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("offer_code", sa.String(length=64), nullable=False),
        sa.Column("placement", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("segment", sa.String(length=64), nullable=False),
        sa.Column("propositions", sa.BigInteger(), nullable=False),
        sa.Column("presented", sa.BigInteger(), nullable=False),
        sa.Column("accepted", sa.BigInteger(), nullable=False),
        sa.Column("rejected", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "environment", "day", "offer_code", "placement", "channel", "category", "segment"
        ),
    )

    _fill(op.get_bind())


def _fill(bind: sa.Connection) -> None:
    """The rollup of the history recorded before this revision (its propositions have no
    segments yet: only the `*` rows), so that reports cover it too."""
    columns = ("environment", "offer_code", "placement", "channel", "categories")
    props = sa.table("propositions", *(sa.column(c) for c in (*columns, "decided_at")))
    events = sa.table("events", *(sa.column(c) for c in (*columns, "at", "kind")))
    deltas: dict[tuple[str, ...], list[int]] = {}
    sources = [(0, props, props.c.decided_at, None)] + [
        (1 + i, events, events.c.at, kind)
        for i, kind in enumerate(("presented", "accepted", "rejected"))
    ]
    for measure, table, at, kind in sources:
        day = sa.func.substr(sa.cast(at, sa.String()), 1, 10)
        cols = [table.c[c] for c in columns]
        query = sa.select(day, *cols, sa.func.count()).group_by(day, *cols)
        if kind is not None:
            query = query.where(table.c.kind == kind, table.c.offer_code.is_not(None))
        for row in bind.execute(query):
            values: list[Any] = list(row)
            d, env, offer, placement, channel, categories, n = values
            if not offer:
                continue
            first = (categories or "").split()
            key = (
                env,
                str(d)[:10],
                offer,
                placement or "",
                channel or "",
                first[0] if first else "",
                "*",
            )
            deltas.setdefault(key, [0, 0, 0, 0])[measure] += int(n)
    if deltas:
        names = ("environment", "day", "offer_code", "placement", "channel", "category", "segment")
        rows = [
            {
                **dict(zip(names, key, strict=True)),
                "propositions": c[0],
                "presented": c[1],
                "accepted": c[2],
                "rejected": c[3],
            }
            for key, c in sorted(deltas.items())
        ]
        bind.execute(sa.table("report_daily", *(sa.column(c) for c in rows[0])).insert(), rows)


def downgrade() -> None:
    op.drop_table("report_daily")
    op.drop_index("ix_events_time", "events")
    op.drop_index("ix_propositions_time", "propositions")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("segments")
    with op.batch_alter_table("propositions") as batch:
        batch.drop_column("segments")
