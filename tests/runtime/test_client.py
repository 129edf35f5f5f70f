"""overture.client over real HTTP: the sync and the async client."""

from __future__ import annotations

import asyncio

import pytest

from overture.client import AsyncClient, Client, OvertureError
from overture.runtime import RuntimeNode, RuntimeSettings, create_app
from tests.deployed import Deployed
from tests.design.server import serve_app


def test_the_sync_client(shop: Deployed) -> None:
    app = create_app(RuntimeNode(RuntimeSettings(), shop.db))
    with serve_app(app) as url, Client(url, shop.key) as overture:
        decision = overture.decide(["banner"], profile_id="v1", profile={"tier": "gold"})
        offer = decision.placements[0].offers[0]
        assert (offer.offer, offer.content["text"]) == ("BIG", "Big gold")
        result = overture.event("click", tracking_code=offer.tracking_code, event_id="e1")
        assert (result.status, result.kind) == ("stored", "accepted")
        assert overture.event("click", tracking_code=offer.tracking_code, event_id="e1").status == (
            "duplicate"
        )
        batch = overture.events([{"name": "view", "offer": "RARE", "profile_id": "v1"}])
        assert batch.stored == 1
        session = overture.start_session("s-1", profile_id="v2")
        assert overture.decide(["banner"], session_id=session.session_id).profile_id == "v2"
        assert overture.set_audience("s-1", profile_id="v3").profile_id == "v3"
        overture.end_session("s-1")
        assert [p["offer"] for p in overture.history("v1")["propositions"]] == ["BIG"]
        with pytest.raises(OvertureError) as refused:
            overture.decide(["nowhere"])
        assert refused.value.status == 422 and "unknown placement" in refused.value.detail


def test_the_async_client(shop: Deployed) -> None:
    app = create_app(RuntimeNode(RuntimeSettings(), shop.db))

    async def visit(url: str) -> list[str]:
        async with AsyncClient(url, shop.key) as overture:
            await overture.start_session("s-1", profile_id="v1")
            offers = []
            for _ in range(3):
                decision = await overture.decide([("banner", 1)], session_id="s-1")
                offers.append(decision.placements[0].offers[0].offer)
            first = (await overture.decide(["sidebar"], record=False)).placements[0].offers
            with pytest.raises(OvertureError, match="unknown tracking code"):
                # a test request's tracking codes are not recorded
                await overture.event("view", tracking_code=first[0].tracking_code)
            await overture.end_session("s-1")
            return offers

    with serve_app(app) as url:
        assert asyncio.run(visit(url)) == ["BIG", "BIG", "RARE"]
