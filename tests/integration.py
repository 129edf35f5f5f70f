"""Access to the real services integration tests use.

Their URLs come from OVERTURE_TEST_POSTGRES_URL and OVERTURE_TEST_REDIS_URL (.ci/run sets
them); when a variable is not set at all, tests/conftest.py tries the usual local URL
(`LOCAL`) and sets it if the service answers there, so `make test` on a machine where
PostgreSQL and Redis run on their usual ports runs what CI runs. An empty variable turns
the service's tests off.

A test that needs PostgreSQL asks for `postgres_url()`; without it it is skipped, saying
which variable to set and which URL was tried.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator

import psycopg
import pytest

POSTGRES = "OVERTURE_TEST_POSTGRES_URL"
REDIS = "OVERTURE_TEST_REDIS_URL"
LOCAL = {
    POSTGRES: "postgresql://postgres@127.0.0.1:5432/test",
    REDIS: "redis://127.0.0.1:6379/0",
}
# why a service is not used, by variable (filled by find_local_services)
UNAVAILABLE: dict[str, str] = {}


def _postgres_answers(url: str) -> None:
    with psycopg.connect(url, connect_timeout=2) as conn:
        conn.execute("SELECT 1")


def _redis_answers(url: str) -> None:
    import redis

    with redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2) as client:
        client.ping()


def find_local_services() -> None:
    """For each service variable that is not set: try the usual local URL (a short time-out)
    and set the variable if the service answers; otherwise remember why, for the skips."""
    probes: dict[str, tuple[str, Callable[[str], None]]] = {
        POSTGRES: ("PostgreSQL", _postgres_answers),
        REDIS: ("Redis", _redis_answers),
    }
    for variable, (name, answers) in probes.items():
        if variable in os.environ:
            if not os.environ[variable]:
                UNAVAILABLE[variable] = f"{variable} is empty: the {name} tests are turned off"
            continue
        url = LOCAL[variable]
        try:
            answers(url)
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            UNAVAILABLE[variable] = (
                f"{variable} is not set and {name} did not answer at {url} ({reason}): "
                f"start it there, or set {variable} (.ci/run sets it)"
            )
        else:
            os.environ[variable] = url


def skip_reason(variable: str, default: str) -> str:
    """Why the tests of `variable`'s service are skipped: what was tried, or `default`."""
    return UNAVAILABLE.get(variable, default)


def postgres_url() -> str:
    url = os.environ.get(POSTGRES)
    if not url:
        pytest.skip(
            skip_reason(
                POSTGRES,
                f"set {POSTGRES} (e.g. {LOCAL[POSTGRES]}) to run the PostgreSQL tests; "
                ".ci/run sets it",
            )
        )
    return url


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh schema in the test PostgreSQL database, dropped afterwards; yields a URL
    whose connections use it (so tests never see each other's tables)."""
    url = postgres_url()
    schema = f"ovt_{secrets.token_hex(6)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        _drop_schema(url, schema)


def _drop_schema(url: str, schema: str) -> None:
    """DROP SCHEMA waits for every lock on its tables: a connection a test left open in a
    transaction (an `engine.connect()` never closed) made it wait for ever and CI hang. It
    waits a minute, then fails naming what held the schema."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '60s'")
        try:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
        except psycopg.errors.LockNotAvailable:
            held = conn.execute(
                "SELECT state, left(query, 200) FROM pg_stat_activity "
                "WHERE datname = current_database() AND state LIKE 'idle in transaction%'"
            ).fetchall()
            raise AssertionError(
                f"schema {schema} stayed locked for 60 s after its test, by a connection "
                f"left open in a transaction (close every engine.connect()): {held}"
            ) from None


def redis_url() -> str:
    url = os.environ.get(REDIS)
    if not url:
        pytest.skip(
            skip_reason(
                REDIS,
                f"set {REDIS} (e.g. {LOCAL[REDIS]}) to run the Redis tests; .ci/run sets it",
            )
        )
    return url
