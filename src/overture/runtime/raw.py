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

# How SQLAlchemy stores a DateTime in SQLite (always with microseconds): compared as text.
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


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
        return value.strftime(_SQLITE_TIME) if self.sqlite else value

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()


def as_time(value: Any) -> dt.datetime:
    """A stored DateTime as read by the driver (text from sqlite3)."""
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
