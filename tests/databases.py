"""Databases for tests: migrated by the real migrations for one test, or copies of one
migrated once (tests/conftest.py's `database` fixture).

Migrating took most of the time of many tests (Alembic, and on SQLite its batch mode's
table copies). A copy holds what the migrations made, made once per session (per worker):
on SQLite a copy of the file; on PostgreSQL the statements the migrations executed, with
their parameters, recorded once and executed again in each test's new schema (one round
trip each, in one transaction). tests/store keeps migrating each test's database for real.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import event

from overture.store import Database
from tests.integration import postgres_schema, postgres_url


@contextlib.contextmanager
def fresh_database(kind: str, folder: Path) -> Iterator[Database]:
    """A database migrated by the real migrations (`Database.upgrade()`) for this test."""
    if kind == "sqlite":
        db = Database(str(folder / "overture.db"))
        db.upgrade()
        yield db
        db.dispose()
        return
    with postgres_schema() as url:
        db = Database(url)
        db.upgrade()
        yield db
        db.dispose()


def migrated_sqlite(folder: Path) -> Path:
    """A SQLite file migrated for real, for `sqlite_copy` to copy."""
    path = folder / "overture.db"
    db = Database(str(path))
    db.upgrade()
    db.dispose()  # the last connection closed: the WAL is folded into the file
    return path


@contextlib.contextmanager
def sqlite_copy(template: Path, folder: Path) -> Iterator[Database]:
    path = folder / template.name
    shutil.copyfile(template, path)
    db = Database(str(path))
    yield db
    db.dispose()


@dataclass
class Recording:
    """The statements a migration executed on PostgreSQL (reads left out), with their
    parameters: (statement, parameters, executemany)."""

    statements: list[tuple[str, Any, bool]] = field(default_factory=list)

    def replay(self, schema_url: str) -> None:
        with psycopg.connect(_libpq(schema_url)) as conn, conn.cursor() as cur:
            for statement, parameters, many in self.statements:
                if many:
                    cur.executemany(statement, parameters)
                else:
                    cur.execute(statement, parameters or None)


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def migrated_postgresql() -> Recording:
    """Migrate a scratch schema for real (dropped afterwards), recording what it executed."""
    recording = Recording()

    def record(
        _conn: Any,
        _cursor: Any,
        statement: str,
        parameters: Sequence[Any] | Mapping[str, Any] | None,
        _context: Any,
        executemany: bool,
    ) -> None:
        if not statement.lstrip().upper().startswith(("SELECT", "SHOW")):
            recording.statements.append((statement, parameters, executemany))

    postgres_url()  # skips, saying why, without PostgreSQL
    with postgres_schema() as url:
        db = Database(url)
        event.listen(db.engine, "before_cursor_execute", record)
        db.upgrade()
        db.dispose()
    return recording


@contextlib.contextmanager
def postgresql_copy(recording: Recording) -> Iterator[Database]:
    with postgres_schema() as url:
        recording.replay(url)
        db = Database(url)
        yield db
        db.dispose()
