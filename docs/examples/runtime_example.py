"""The runtime from a touchpoint's side, with the Python client (run by
tests/docs/test_examples.py).

Everything runs in-process on a temporary SQLite database; against a server started with
`overture serve`, write `AsyncClient("http://127.0.0.1:8000", api_key=...)` instead.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import httpx

from overture.client import AsyncClient
from overture.demo import CATALOG_PATH
from overture.design import access, deployments, offers, transfer
from overture.design.catalog import Actor
from overture.runtime import RuntimeNode, RuntimeSettings, create_app
from overture.store import Database

ADMIN = Actor("ann", frozenset({"administrator"}))
STUDENT = {"customer_id": "C1", "age": 20, "is_student": True, "products": []}


def deploy_demo(db: Database) -> str:
    """What `overture catalog import`, `offers submit/approve --all`, `deploy --env
    staging` and `keys add --env staging` do; returns the API key."""
    db.upgrade()
    with db.session() as s:
        files = {p.name: p.read_text() for p in CATALOG_PATH.glob("*.yaml")}
        transfer.import_catalog(s, ADMIN, files)
        for item in offers.list_offers(s, limit=1000)[0]:
            submitted = offers.submit(s, ADMIN, item.key, item.version)
            offers.approve(s, ADMIN, item.key, submitted.version)
        deployments.deploy(s, ADMIN, "staging")
        return access.create_api_key(s, ADMIN, "staging", "web").key


async def visit(node: RuntimeNode, key: str) -> dict[str, object]:
    transport = httpx.ASGITransport(app=create_app(node))
    async with AsyncClient("http://runtime", key, transport=transport) as overture:
        first = await overture.decide(["web_home_hero"], profile=STUDENT)
        offer = first.placements[0].offers[0]
        clicked = await overture.event("click", tracking_code=offer.tracking_code)
        # the demo's `accepted` policy: an offer accepted is never shown again
        later = await overture.decide(["web_home_hero"], profile=STUDENT)
        return {
            "first": offer.offer,
            "event": (clicked.status, clicked.kind),
            "later": later.placements[0].offers[0].offer,
        }


def main() -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        db = Database(str(Path(folder) / "overture.db"))
        key = deploy_demo(db)
        node = RuntimeNode(RuntimeSettings(), db)

        async def run() -> dict[str, object]:
            await node.start()  # `overture serve` does this on startup
            try:
                return await visit(node, key)
            finally:
                await node.stop()  # and this on shutdown: everything accepted is written

        result = asyncio.run(run())
        db.dispose()
    return result


if __name__ == "__main__":
    print(main())
