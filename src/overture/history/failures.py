"""When a dependency fails: what callers are told, and what a node knows of its database
and Redis.

The runtime answers 503 with Retry-After and a sentence for people whenever it cannot
answer now (docs/runtime.md, "Failures"). The exceptions below say why; `Unavailable` is
the one the API and the servlet turn into that answer (runtime.service re-exports it).

A failed write says whether it certainly left nothing behind (`written=False`: the
connection failed before the commit, or the database refused a statement) or may have been
committed (`written=None`: the connection was lost during the commit). The Redis ledger
takes a claim's counts back at once in the first case; in the second its reconciliation
settles the claim against the history once the database answers (redis_ledger.py).

`DependencyState` is a node's view of one dependency: up or down, since when, why. It is a
circuit breaker too: while a dependency is down, callers fail at once (no connection
attempt per request) except for one attempt a second, whose success closes it again.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import time
from typing import Any

# What a down database looks like from SQLite (the rest, e.g. "no such table", are bugs)
_SQLITE_DOWN = (
    "disk i/o error",
    "database or disk is full",
    "unable to open database",
    "readonly database",
)
# What a Redis that cannot serve now answers (loading its data, out of memory, a replica…)
_REDIS_DOWN = ("LOADING", "MISCONF", "OOM", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN")
# PostgreSQL classes: connection exception, insufficient resources, operator intervention
# (shutdown, recovery), system error
_PG_DOWN = ("08", "53", "57", "58")

log = logging.getLogger(__name__)


class Unavailable(RuntimeError):
    """The node cannot answer now (no deployment yet, too much contention, a dependency
    down): answered 503 with Retry-After; the client retries."""

    retry_after = 1  # seconds, for Retry-After


class DependencyDown(Unavailable):
    """The database or Redis does not answer. `written`: False when the failed write
    certainly left nothing behind, None when it may have been committed."""

    dependency = "a dependency"
    retry_after = 5

    def __init__(self, message: str, *, written: bool | None = False) -> None:
        super().__init__(message)
        self.written = written


class DatabaseDown(DependencyDown):
    dependency = "database"


class RedisDown(DependencyDown):
    dependency = "redis"


class CountsUnavailable(Exception):
    """What policies count cannot be read or checked safely now (Redis does not answer,
    or its counters are being rebuilt): decide without the offers policies count."""


def database_down(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot serve now (connection lost or refused, server
    shutting down or starting, disk full), as opposed to refusing a statement or a bug."""
    if isinstance(exc, DatabaseDown):
        return True
    orig = getattr(exc, "orig", None)  # SQLAlchemy's wrapper of the driver's error
    if isinstance(orig, BaseException) and orig is not exc:
        if getattr(exc, "connection_invalidated", False):
            return True
        return database_down(orig)
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return any(s in text for s in _SQLITE_DOWN)
    code = getattr(exc, "sqlstate", "")
    module = type(exc).__module__
    if module.startswith("psycopg"):
        if isinstance(code, str) and code:
            return code[:2] in _PG_DOWN
        # no SQLSTATE: the client's own failure (connection refused, closed, lost)
        return type(exc).__name__ in ("OperationalError", "InterfaceError")
    return isinstance(exc, OSError | TimeoutError)


def redis_down(exc: BaseException) -> bool:
    """Whether `exc` says Redis cannot serve now (connection lost or refused, a time-out,
    loading its data, out of memory, a read-only replica)."""
    if isinstance(exc, RedisDown):
        return True
    try:
        from redis import exceptions as rx
    except ImportError:  # pragma: no cover (redis is a dependency)
        return False
    if isinstance(exc, rx.ConnectionError | rx.TimeoutError | rx.ReadOnlyError):
        return True
    if isinstance(exc, rx.ResponseError):
        return str(exc).startswith(_REDIS_DOWN)
    return isinstance(exc, OSError | TimeoutError)


def reason(exc: BaseException) -> str:
    """A failure's first line, for the node's log (answers and /readyz never carry it)."""
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


class DependencyState:
    """What a node knows of one dependency (see the module's doc)."""

    def __init__(self, name: str, *, used: bool = True, retry_seconds: float = 1.0) -> None:
        self.name = name
        self.used = used
        self.up = True
        self.since = time.time()  # of the current state
        self.error: str | None = None
        self.checked_at: float | None = None
        self.failures = 0  # times it went down
        self.retry_seconds = retry_seconds
        self._tried = -float("inf")  # monotonic: the last attempt while down

    def failed(self, exc: BaseException | str) -> None:
        """A call failed because the dependency is down."""
        now = time.time()
        self.checked_at = now
        self.error = exc if isinstance(exc, str) else reason(exc)
        self._tried = time.monotonic()
        if self.up:
            self.up = False
            self.since = now
            self.failures += 1
            log.warning("%s is down: %s", self.name, self.error)

    def answered(self) -> None:
        """A call succeeded."""
        now = time.time()
        self.checked_at = now
        if not self.up:
            self.up = True
            self.since = now
            self.error = None

    def may_try(self) -> bool:
        """Whether to call it now: always while up; while down, once per retry_seconds
        (the caller that gets True makes the attempt; the others fail at once)."""
        if self.up:
            return True
        now = time.monotonic()
        if now - self._tried >= self.retry_seconds:
            self._tried = now
            return True
        return False

    def view(self) -> dict[str, Any]:
        """As /readyz shows it."""
        if not self.used:
            return {"state": "not used"}
        out: dict[str, Any] = {"state": "up" if self.up else "down", "since": _iso(self.since)}
        if self.checked_at is not None:
            out["checked_at"] = _iso(self.checked_at)
        if self.error is not None:
            # /readyz answers anyone: the driver's text can name hosts, users and
            # authentication failures, so it goes to the node's log, not here
            out["error"] = f"{self.name} does not answer (the node's log says why)"
        return out


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds")
