"""Access to the real services integration tests use (their URLs are set by .ci/run).

A test that needs PostgreSQL asks for `postgres_url()`; without OVERTURE_TEST_POSTGRES_URL
it is skipped, saying which variable to set.
"""

from __future__ import annotations

import os

import pytest


def postgres_url() -> str:
    url = os.environ.get("OVERTURE_TEST_POSTGRES_URL")
    if not url:
        pytest.skip(
            "set OVERTURE_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/test) "
            "to run the PostgreSQL tests; .ci/run sets it"
        )
    return url
