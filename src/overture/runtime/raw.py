"""Hot reads through the database driver directly.

A decision for a profile not seen lately reads its profile row and its counted history:
a few small indexed SELECTs. Through SQLAlchemy's execution layer each costs a pool
checkout, a compiled-cache lookup and result processing (~100 µs); through the driver's
own cursor on a connection kept by the reading thread, a tenth of that. The SQL is
written once with `?` placeholders (sqlite3) and given `%s` ones for psycopg.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from overture.store import Database

# SQLAlchemy stores a DateTime in SQLite as text, "YYYY-MM-DD HH:MM:SS.ffffff" (always with
# microseconds), compared as text: isoformat(" ", "microseconds") writes it, 2x strftime.


class RawReader:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.sqlite = db.is_sqlite
        self._local = threading.local()
        self._connections: list[Any] = []
        self._lock = threading.Lock()

    def rows(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self.db.engine.raw_connection()
            with self._lock:
                self._connections.append(conn)
        cursor = conn.cursor()
        try:
            cursor.execute(sql if self.sqlite else sql.replace("?", "%s"), params)
            rows: list[tuple[Any, ...]] = list(cursor.fetchall())
        except BaseException:
            conn.rollback()
            raise
        finally:
            cursor.close()
        if not self.sqlite:
            conn.commit()  # end the read's transaction: no idle-in-transaction sessions
        return rows

    def time(self, value: dt.datetime) -> Any:
        """A time as a parameter compared with a stored DateTime."""
        return value.isoformat(" ", "microseconds") if self.sqlite else value

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()


def as_time(value: Any) -> dt.datetime:
    """A stored DateTime as read by the driver (text from sqlite3)."""
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)


class Tx:
    """The recorder's transaction on the driver's own connection.

    The recorder writes every decision's propositions and claims: through SQLAlchemy's
    execution layer a claim cost ~400 µs of Python in the recorder thread, which holds
    the GIL the event loop needs; through the cursor it costs a tenth. SQL is written
    once with `?` placeholders and given `%s` ones for psycopg.
    """

    def __init__(self, conn: Any, sqlite: bool) -> None:
        self.sqlite = sqlite
        self._cursor = conn.cursor()

    def _sql(self, sql: str) -> str:
        return sql if self.sqlite else sql.replace("?", "%s")

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        self._cursor.execute(self._sql(sql), params)
        return int(self._cursor.rowcount)

    def first(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        self._cursor.execute(self._sql(sql), params)
        row: tuple[Any, ...] | None = self._cursor.fetchone()
        return row

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self._cursor.executemany(self._sql(sql), rows)

    def inserted(self, sql: str, rows: list[tuple[Any, ...]]) -> list[bool]:
        """Run an `INSERT ... ON CONFLICT DO NOTHING` for each row: which rows it inserted
        (sqlite3 reports each statement's changes; psycopg returns one result per row)."""
        if not rows:
            return []
        if self.sqlite:
            out = []
            for row in rows:
                self._cursor.execute(sql, row)
                out.append(self._cursor.rowcount == 1)
            return out
        cursor = self._cursor
        cursor.executemany(self._sql(sql) + " RETURNING 1", rows, returning=True)
        flags = []
        while True:
            flags.append(cursor.fetchone() is not None)
            if not cursor.nextset():
                break
        return flags

    def time(self, value: dt.datetime) -> Any:
        """A time as a parameter stored in a DateTime column (SQLAlchemy's text format)."""
        return value.isoformat(" ", "microseconds") if self.sqlite else value

    def close(self) -> None:
        self._cursor.close()
