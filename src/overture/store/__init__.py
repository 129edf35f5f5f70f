"""Storage: the database schema (SQLAlchemy), its migrations (Alembic), connections."""

from overture.store import history as _history  # noqa: F401 - registers the history tables with Base
from overture.store.database import DEFAULT_URL, URL_VARIABLE, Database, resolve_url

__all__ = ["DEFAULT_URL", "URL_VARIABLE", "Database", "resolve_url"]
