"""Storage: the database schema (SQLAlchemy), its migrations (Alembic), connections."""

from overture.store.database import DEFAULT_URL, URL_VARIABLE, Database, resolve_url

__all__ = ["DEFAULT_URL", "URL_VARIABLE", "Database", "resolve_url"]
