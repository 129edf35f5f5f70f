"""Hot reads and writes through the database driver, on the event loop: the history's
ledgers and recorder, the runtime's profile lookups (and the batch's bulk statements take
its placeholders and times).

A decision for a profile not seen lately reads its profile row and its counted history (a
few small indexed SELECTs), and every decision's claim and propositions are written. Through
SQLAlchemy's execution layer each statement costs a pool checkout, a compiled-cache lookup
and result processing (~100 µs of Python); through the driver's own cursor, a tenth. And
none of it runs in a thread: a thread waiting on the database must take the interpreter
lock back from the busy event loop after every statement, which can cost a whole switch
interval (5 ms) each time. So:

- SQLite (sqlite3): statements run where they are awaited, on the loop's thread. They never
  wait for I/O worth yielding for (WAL, no fsync per commit), so the coroutines below
  complete without suspending.
- PostgreSQL (psycopg's asyncio connections): each round trip yields to the loop, which
  serves other requests meanwhile.

SQL is written once with `?` placeholders (sqlite3) and given `%s` ones for psycopg.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url

from overture.store import Database

Row = tuple[Any, ...]


def _sqlite_time(value: dt.datetime) -> str:
    """SQLAlchemy stores a DateTime in SQLite as text, "YYYY-MM-DD HH:MM:SS.ffffff" (always
    with microseconds), compared as text; isoformat writes it twice as fast as strftime.
    (sqlite3's own adapter leaves out a zero microsecond, which would compare wrong.)"""
    return value.isoformat(" ", "microseconds")


def for_driver(sql: str, sqlite: bool) -> str:
    """SQL written with `?` placeholders (sqlite3's), as the database's driver takes it
    (psycopg: `%s`)."""
    return sql if sqlite else sql.replace("?", "%s")


def unnest_insert(table: Table, columns: Sequence[str], tail: str = "") -> str:
    """PostgreSQL: an INSERT of any number of rows in one statement, each column given as
    one array parameter, inserted in the order given (so that writers taking rows in the
    same order lock them in that order), then `tail` (ON CONFLICT ...). Tx.insert_many
    runs it. The arrays go in psycopg's binary format (`%b`): in its text format every
    string is searched for characters to quote, which cost three times as much."""
    dialect = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]
    # the base type without its length: a cast to VARCHAR(64) would cut a longer value
    # short in silence, where the column refuses it as an INSERT ... VALUES does
    types = [re.sub(r"\(\d+\)", "", table.c[c].type.compile(dialect=dialect)) for c in columns]
    arrays = ", ".join(f"%b::{t}[]" for t in types)
    names = ", ".join(columns)
    return (
        f"INSERT INTO {table.name} ({names}) SELECT {names} FROM unnest({arrays}) "
        f"WITH ORDINALITY AS given({names}, overture_order) ORDER BY overture_order {tail}"
    ).rstrip()


def driver_time(value: dt.datetime, sqlite: bool) -> Any:
    """A time as a driver parameter compared with or stored in a DateTime column."""
    return _sqlite_time(value) if sqlite else value


def conninfo(db: Database) -> str:
    """The libpq connection string of a PostgreSQL database's URL."""
    url = make_url(db.url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


CONNECT_TIMEOUT = 5  # seconds: a server that does not answer fails the call, not hangs it


async def pg_connect(db: Database, *, autocommit: bool) -> Any:
    import psycopg

    return await psycopg.AsyncConnection.connect(
        conninfo(db), autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT
    )


class Reader:
    """Reads outside any transaction: thread-local sqlite3 connections, or a few psycopg
    asyncio connections shared by the loop's requests."""

    def __init__(self, db: Database, connections: int = 4) -> None:
        self.db = db
        self.sqlite = db.is_sqlite
        self._local = threading.local()
        self._opened: list[Any] = []
        self._lock = threading.Lock()
        self._size = connections
        self._idle: asyncio.Queue[Any] | None = None
        self._count = 0

    async def rows(self, sql: str, params: Row) -> list[Row]:
        if self.sqlite:
            return self._sqlite_rows(sql, params)
        for _ in range(self._size):
            try:
                return await self._pg_rows(sql, params)
            except _Stale:
                # an idle connection broken since its last use (the server restarted):
                # reads change nothing, so the read is made again on another connection
                continue
        return await self._pg_rows(sql, params, last=True)

    async def _pg_rows(self, sql: str, params: Row, *, last: bool = False) -> list[Row]:
        conn, fresh = await self._acquire()
        try:
            async with conn.cursor() as cursor:
                await cursor.execute(for_driver(sql, False), params)
                rows: list[Row] = await cursor.fetchall()
                return rows
        except BaseException as exc:
            if conn.closed or conn.broken:
                with self._lock:
                    self._opened.remove(conn)
                self._count -= 1
                conn = None
                if not fresh and not last and isinstance(exc, Exception):
                    raise _Stale from exc
            raise
        finally:
            if conn is not None:
                assert self._idle is not None
                self._idle.put_nowait(conn)

    def _sqlite_rows(self, sql: str, params: Row) -> list[Row]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self.db.engine.raw_connection()
            with self._lock:
                self._opened.append(conn)
        cursor = conn.cursor()
        try:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    async def _acquire(self) -> tuple[Any, bool]:
        """A connection, and whether it was opened just now."""
        if self._idle is None:
            self._idle = asyncio.Queue()
        if self._idle.empty() and self._count < self._size:
            self._count += 1
            try:
                conn = await pg_connect(self.db, autocommit=True)
            except BaseException:
                self._count -= 1
                raise
            with self._lock:
                self._opened.append(conn)
            return conn, True
        return await self._idle.get(), False

    def time(self, value: dt.datetime) -> Any:
        """A time as a parameter compared with a stored DateTime."""
        return driver_time(value, self.sqlite)

    async def aclose(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            with contextlib.suppress(Exception):
                result = conn.close()
                if asyncio.iscoroutine(result):
                    await result
        self._idle, self._count = None, 0


class _Stale(Exception):
    """A pooled connection failed and is gone: the read may be made again."""


def as_time(value: Any) -> dt.datetime:
    """A stored DateTime as read by the driver (text from sqlite3)."""
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)


class Tx:
    """The recorder's transaction on the driver's own connection (see the module's doc).
    Statements are awaited; on SQLite they complete without suspending."""

    def __init__(self, cursor: Any, sqlite: bool) -> None:
        self.sqlite = sqlite
        self._cursor = cursor
        # what the transaction's writers leave for its end (the reports' rollup deltas:
        # written once, in one sorted statement, just before the commit)
        self.pending: dict[str, Any] = {}

    def _sql(self, sql: str) -> str:
        return for_driver(sql, self.sqlite)

    async def execute(self, sql: str, params: Row = ()) -> int:
        """Run one statement; the number of rows it changed."""
        if self.sqlite:
            self._cursor.execute(sql, params)
        else:
            await self._cursor.execute(self._sql(sql), params)
        return int(self._cursor.rowcount)

    async def first(self, sql: str, params: Row = ()) -> Row | None:
        if self.sqlite:
            self._cursor.execute(sql, params)
            row: Row | None = self._cursor.fetchone()
            return row
        await self._cursor.execute(self._sql(sql), params)
        found: Row | None = await self._cursor.fetchone()
        return found

    async def rows(self, sql: str, params: Row = ()) -> list[Row]:
        """Run one statement; every row it returns."""
        if self.sqlite:
            self._cursor.execute(sql, params)
            return list(self._cursor.fetchall())
        await self._cursor.execute(self._sql(sql), params)
        found: list[Row] = await self._cursor.fetchall()
        return found

    async def executemany(self, sql: str, rows: list[Row]) -> None:
        if not rows:
            return
        if self.sqlite:
            self._cursor.executemany(sql, rows)
        else:
            await self._cursor.executemany(self._sql(sql), rows)

    async def insert_many(self, sql: str, arrays_sql: str, rows: list[Row]) -> None:
        """Insert `rows`: on SQLite with `sql` run per row by executemany (sqlite3's loop
        is in C), on PostgreSQL with `arrays_sql` (unnest_insert: one array per column)
        in one statement. psycopg's executemany sends a statement per row, ~20 µs of
        Python each, and a decision's propositions and their rollup rows made seven."""
        if not rows:
            return
        if self.sqlite:
            self._cursor.executemany(sql, rows)
        else:
            columns = [list(column) for column in zip(*rows, strict=True)]
            await self._cursor.execute(self._sql(arrays_sql), columns)

    def time(self, value: dt.datetime) -> Any:
        """A time as a parameter stored in a DateTime column."""
        return driver_time(value, self.sqlite)
