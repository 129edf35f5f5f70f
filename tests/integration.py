"""Access to the real services integration tests use (their URLs are set by .ci/run).

A test that needs PostgreSQL asks for `postgres_url()`; without OVERTURE_TEST_POSTGRES_URL
it is skipped, saying which variable to set.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator

import psycopg
import pytest


def postgres_url() -> str:
    url = os.environ.get("OVERTURE_TEST_POSTGRES_URL")
    if not url:
        pytest.skip(
            "set OVERTURE_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/test) "
            "to run the PostgreSQL tests; .ci/run sets it"
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
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def redis_url() -> str:
    url = os.environ.get("OVERTURE_TEST_REDIS_URL")
    if not url:
        pytest.skip(
            "set OVERTURE_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0) to run the Redis "
            "tests; .ci/run sets it"
        )
    return url
