"""Alembic environment: runs migrations on the engine that overture.store.migrate passes in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, create_engine

from overture.store.models import Base

config = context.config
engine: Engine = config.attributes.get("engine") or create_engine(
    config.get_main_option("sqlalchemy.url") or ""
)

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
