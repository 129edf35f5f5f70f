"""Shared test configuration.

Hypothesis profiles: `default` keeps the suite fast; `HYPOTHESIS_PROFILE=deep` runs far
more examples when hunting for disagreements between the engines.

PostgreSQL and Redis: see tests/integration.py (the usual local URLs are tried when the
variables are not set).
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from overture.store import Database
from tests.databases import (
    Recording,
    Snapshots,
    migrated_postgresql,
    migrated_sqlite,
    postgresql_copy,
    sqlite_copy,
)
from tests.deployed import Deployed, deploy_demo, deploy_shop
from tests.integration import UNAVAILABLE, find_local_services

settings.register_profile("default", deadline=None)
settings.register_profile(
    "deep", deadline=None, max_examples=3000, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_configure(config: pytest.Config) -> None:
    # Before collection: some test modules read the variables when imported. (Under
    # pytest-xdist the workers inherit what the main process found.)
    find_local_services()


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        f"{variable}: {os.environ.get(variable) or UNAVAILABLE.get(variable, 'not set')}"
        for variable in ("OVERTURE_TEST_POSTGRES_URL", "OVERTURE_TEST_REDIS_URL")
    ]


_SLOW_MODULE = re.compile(r"^pytestmark = .*\bpytest\.mark\.slow\b", re.MULTILINE)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Under `-m "not slow"` (make check), a module marked slow as a whole has nothing to run:
    it is not even imported (the schemathesis ones build their apps and tests on import)."""
    if (
        collection_path.suffix == ".py"
        and collection_path.name.startswith("test_")
        and config.getoption("markexpr", "").replace(" ", "") == "notslow"
        and _SLOW_MODULE.search(collection_path.read_text())
    ):
        return True
    return None


@pytest.hookimpl(trylast=True)  # after pytest-xdist's
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each test its own id, and its xdist_group in it.

    Schemathesis names a generated test after its operation (`test_no_server_errors[GET
    /v1/design/offers]`), but on pytest 9 all of a function's share the function's id;
    pytest-xdist tells tests apart by id (so do --durations, -k and --lf): it would run one
    test per function. And pytest-xdist (3.8) puts a test's xdist_group in its id (`...@spark`,
    how --dist loadgroup finds the group) where pytest 9 no longer reads it: each Spark
    test went to any worker, starting a JVM in each."""
    loadgroup = bool(getattr(config.option, "loadgroup", False))  # set in xdist workers
    for item in items:
        nodeid = item.nodeid
        if not nodeid.endswith(f"::{item.name}") and "@" not in nodeid:
            nodeid = f"{nodeid.rsplit('::', 1)[0]}::{item.name}"
        groups = sorted({str(m.args[0]) for m in item.iter_markers("xdist_group") if m.args})
        if loadgroup and groups and "@" not in nodeid:
            nodeid += f"@{'_'.join(groups)}"
        if nodeid == item.nodeid:
            continue
        if hasattr(item, "_id"):  # pytest 9: a structured id
            item._id = type(item._id).parse(nodeid)
        else:
            item._nodeid = nodeid  # type: ignore[attr-defined, unused-ignore]  # pytest 8


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A test that skips with its own "set OVERTURE_TEST_..." says instead what was tried."""
    report: pytest.TestReport = yield
    if report.skipped and isinstance(report.longrepr, tuple):
        path, line, reason = report.longrepr
        for variable, why in UNAVAILABLE.items():
            if variable in reason:
                report.longrepr = (path, line, f"Skipped: {why}")
    return report


@pytest.fixture(scope="session")
def _migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_sqlite(tmp_path_factory.mktemp("migrated"))


@pytest.fixture(scope="session")
def _migrated_postgresql() -> Recording:
    return migrated_postgresql()


@pytest.fixture(scope="session")
def snapshots(tmp_path_factory: pytest.TempPathFactory) -> Snapshots:
    """Database states made once and copied into each test's database (tests/databases.py)."""
    return Snapshots(tmp_path_factory.mktemp("snapshots"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated database: SQLite always, PostgreSQL when OVERTURE_TEST_POSTGRES_URL is set
    (in a schema of its own, dropped afterwards).

    A copy of one migrated once per session (see tests/databases.py): migrating took most
    of many tests' time. tests/store/conftest.py gives the migration tests a database
    migrated for each test."""
    if request.param == "sqlite":
        template = request.getfixturevalue("_migrated_sqlite")
        with sqlite_copy(template, tmp_path) as db:
            yield db
    else:
        with postgresql_copy(request.getfixturevalue("_migrated_postgresql")) as db:
            yield db


@pytest.fixture
def demo(database: Database, snapshots: Snapshots) -> Deployed:
    """The demo catalog deployed to staging, with a few hundred customers to look up (made
    once per session, copied into each test's database: tests/databases.py)."""
    return Deployed(database, snapshots.restore_or_make("demo", database, deploy_demo))


@pytest.fixture
def shop(database: Database, snapshots: Snapshots) -> Deployed:
    """The small shop catalog (tests/runtime/catalogs.py) deployed to staging."""
    return Deployed(database, snapshots.restore_or_make("shop", database, deploy_shop))


@pytest.fixture(autouse=True, scope="session")
def _cheaper_password_hashing() -> Iterator[None]:
    """argon2id with small costs: the same algorithm and code paths, without spending
    140 ms per hash in every test that logs in."""
    from argon2 import PasswordHasher

    from overture.auth import secrets

    real = secrets._hasher
    secrets._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    secrets._hasher = real
