"""Databases with a catalog deployed to staging, for the tests of the runtime, the
history, batches and the CLI: `Deployed` (a database and a staging API key), and the
`demo` and `shop` fixtures (tests/conftest.py) made once per session and copied into each
test's database (tests/databases.py)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.testclient import TestClient

from overture.catalog import load_catalog
from overture.demo import CATALOG_PATH
from overture.demo import profiles as demo_profiles
from overture.design import access, deployments, transfer
from overture.runtime import RuntimeNode, RuntimeSettings, create_app
from overture.store import Database
from overture.store.profiles import load_rows
from tests.demo import DEMO_AS_OF
from tests.design.helpers import ADMIN, DEPLOYER, approve_all, demo_files

DEMO_PROFILES = 300


@dataclass
class Deployed:
    db: Database
    key: str  # a staging API key

    def client(self, **settings: object) -> TestClient:
        node = RuntimeNode(RuntimeSettings(poll_seconds=0.1, **settings), db=self.db)  # type: ignore[arg-type]
        return TestClient(create_app(node), headers={"X-API-Key": self.key})


def deploy(db: Database, files: dict[str, str], environment: str = "staging") -> str:
    """Import `files`, approve every offer, deploy; returns an API key for the environment."""
    with db.session() as s:
        transfer.import_catalog(s, ADMIN, files)
        approve_all(s)
        deployments.deploy(s, DEPLOYER, environment)
        return access.create_api_key(s, ADMIN, environment, "tests").key


def deploy_demo(db: Database) -> str:
    """The demo catalog deployed to staging, with a few hundred customers; its API key."""
    key = deploy(db, demo_files())
    audience = load_catalog(CATALOG_PATH).audiences[0]
    load_rows(db, audience, demo_profiles.generate(DEMO_PROFILES, as_of=DEMO_AS_OF).to_pylist())
    return key


def deploy_shop(db: Database) -> str:
    from tests.runtime.catalogs import SHOP

    return deploy(db, {"shop.yaml": SHOP})
