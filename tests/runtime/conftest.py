"""Fixtures for runtime tests: an app on the demo or the shop catalog (the deployed
databases themselves are tests/deployed.py's, their fixtures tests/conftest.py's)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from tests.deployed import Deployed


@pytest.fixture
def api(demo: Deployed) -> Iterator[TestClient]:
    with demo.client() as client:
        yield client


@pytest.fixture
def shop_api(shop: Deployed) -> Iterator[TestClient]:
    with shop.client() as client:
        yield client
