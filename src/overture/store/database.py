"""Connecting to the database named by a URL: SQLite (the embedded default) or PostgreSQL.

    sqlite:///overture.db          one file (WAL mode: readers never wait for the writer)
    postgresql://user@host/db      PostgreSQL, through psycopg 3

A plain file path is taken as a SQLite file. The schema is managed by Alembic
(`overture db upgrade`); `Database.upgrade()` does the same from code.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_URL = "sqlite:///overture.db"
URL_VARIABLE = "OVERTURE_DATABASE_URL"


def resolve_url(url: str | None = None) -> str:
    """The SQLAlchemy URL for `url`, OVERTURE_DATABASE_URL, or the default SQLite file."""
    url = url or os.environ.get(URL_VARIABLE) or DEFAULT_URL
    if "://" not in url:  # a file path
        return f"sqlite:///{Path(url).resolve()}"
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url


def create_engine_for(url: str) -> Engine:
    resolved = resolve_url(url)
    if resolved.startswith("sqlite"):
        engine = create_engine(resolved, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(resolved, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Database:
    """An engine and its sessions. `with db.session() as s:` commits on success."""

    def __init__(self, url: str | None = None) -> None:
        self.url = resolve_url(url)
        self.engine = create_engine_for(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def upgrade(self, revision: str = "head") -> None:
        from overture.store.migrate import upgrade

        upgrade(self, revision)

    def dispose(self) -> None:
        self.engine.dispose()
