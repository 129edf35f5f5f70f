"""Databases for tests: migrated by the real migrations for one test, or copies of one
migrated once (tests/conftest.py's `database` fixture), and states made once and copied
into each test's database (`Snapshots`: the demo catalog deployed, say).

Migrating, and deploying the demo catalog, took most of the time of many tests. A copy
holds what was made once per session (per worker): on SQLite a copy of the file; on
PostgreSQL the statements that were executed, with their parameters, recorded once and
executed again in each test's new schema (reads left out: what they read is in the
recorded parameters, timestamps and keys included). tests/store keeps migrating each
test's database for real.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import make_url

from overture.store import Database
from tests.integration import postgres_schema, postgres_url

T = TypeVar("T")


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

    def record(
        self,
        _conn: Any,
        _cursor: Any,
        statement: str,
        parameters: Sequence[Any] | Mapping[str, Any] | None,
        _context: Any,
        executemany: bool,
    ) -> None:
        """A `before_cursor_execute` listener."""
        if not statement.lstrip().upper().startswith(("SELECT", "SHOW")):
            # "insertmanyvalues" batches say executemany but are one execute of a mapping
            many = executemany and isinstance(parameters, list)
            self.statements.append((statement, parameters, many))

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
    postgres_url()  # skips, saying why, without PostgreSQL
    with postgres_schema() as url:
        db = Database(url)
        event.listen(db.engine, "before_cursor_execute", recording.record)
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


@dataclass
class _Snapshot:
    value: Any
    sqlite_file: Path | None = None
    recording: Recording | None = None


class Snapshots:
    """Database states made once per session (per worker) and copied into the databases of
    the tests that start from them, e.g. the demo catalog deployed with its customers.

    The first test to ask makes the state in its own database for real (`make(db)`); later
    ones get a copy: on SQLite the file, on PostgreSQL the statements `make` executed,
    replayed. A test asks before it changes its database (a fixture right on `database`),
    and gets what `make` returned the first time (an API key, say)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.made: dict[tuple[str, bool], _Snapshot] = {}

    def restore_or_make(self, name: str, db: Database, make: Callable[[Database], T]) -> T:
        made = self.made.get((name, db.is_sqlite))
        if made is not None:
            if made.sqlite_file is not None:
                db.dispose()
                shutil.copyfile(made.sqlite_file, _sqlite_path(db))
            elif made.recording is not None:
                made.recording.replay(db.url)
            return cast(T, made.value)
        if db.is_sqlite:
            value = make(db)
            db.dispose()  # every connection closed: the WAL is folded into the file
            path = self.folder / f"{name}.db"
            shutil.copyfile(_sqlite_path(db), path)
            self.made[name, True] = _Snapshot(value, sqlite_file=path)
        else:
            recording = Recording()
            event.listen(db.engine, "before_cursor_execute", recording.record)
            try:
                value = make(db)
            finally:
                event.remove(db.engine, "before_cursor_execute", recording.record)
            self.made[name, False] = _Snapshot(value, recording=recording)
        return value


def _sqlite_path(db: Database) -> Path:
    path = make_url(db.url).database
    assert path, db.url
    return Path(path)
