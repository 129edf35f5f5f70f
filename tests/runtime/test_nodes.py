"""Several runtime nodes on one database (and Redis): exact policies, atomic swaps.

Each node is a real uvicorn server with its own event loop, recorder and caches;
clients hammer them over HTTP from threads."""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from overture.design import deployments
from overture.runtime import RuntimeNode, RuntimeSettings, create_app
from overture.store import Database
from overture.store.history import PropositionRow
from tests.deployed import Deployed
from tests.design.helpers import DEPLOYER, approve_all
from tests.design.server import serve_app
from tests.runtime.catalogs import SHOP


def redis_url() -> str:
    url = os.environ.get("OVERTURE_TEST_REDIS_URL")
    if not url:
        pytest.skip("set OVERTURE_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0); .ci/run sets it")
    return url


@pytest.fixture(params=["database", pytest.param("redis", marks=pytest.mark.integration)])
def counters(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Node settings: counters in the database, or in Redis (under a prefix of its own)."""
    if request.param == "database":
        return {}
    return {"redis": redis_url(), "redis_prefix": f"test-{secrets.token_hex(4)}"}


@contextlib.contextmanager
def nodes(db: Database, count: int, **settings: Any) -> Iterator[list[str]]:
    with contextlib.ExitStack() as stack:
        urls = [
            stack.enter_context(
                serve_app(
                    create_app(RuntimeNode(RuntimeSettings(poll_seconds=0.1, **settings), db))
                )
            )
            for _ in range(count)
        ]
        yield urls


def hammer(urls: list[str], key: str, bodies: list[dict[str, Any]], threads: int = 8) -> list[Any]:
    """POST every body to /v1/decisions, spread over the nodes, `threads` at a time."""
    local = threading.local()

    def one(i: int) -> Any:
        if not hasattr(local, "client"):
            local.client = httpx.Client(headers={"X-API-Key": key}, timeout=30)
        answer = local.client.post(f"{urls[i % len(urls)]}/v1/decisions", json=bodies[i])
        return answer.status_code, answer.json()

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(len(bodies))))


def proposed(db: Database) -> dict[tuple[str | None, str], int]:
    with db.session() as s:
        rows = s.execute(
            select(PropositionRow.profile_id, PropositionRow.offer_code, func.count()).group_by(
                PropositionRow.profile_id, PropositionRow.offer_code
            )
        ).all()
    return {(p, o): n for p, o, n in rows}


def test_two_nodes_hammering_one_profile_never_exceed_its_cap(
    shop: Deployed, counters: dict[str, Any]
) -> None:
    ask = {"profile_id": "hammer", "placements": [{"placement": "banner"}]}
    with nodes(shop.db, 2, **counters) as urls:
        results = hammer(urls, shop.key, [ask] * 40)
    assert {status for status, _ in results} == {200}
    counts = proposed(shop.db)
    # twice_a_week: 2 of each deal; the fallback takes every other request
    assert counts == {("hammer", "BIG"): 2, ("hammer", "RARE"): 2, ("hammer", "HELLO"): 36}


def test_two_nodes_spend_an_inventory_exactly(shop: Deployed, counters: dict[str, Any]) -> None:
    asks = [
        {"profile_id": f"p{i}", "placements": [{"placement": "sidebar", "count": 2}]}
        for i in range(40)
    ]
    with nodes(shop.db, 2, **counters) as urls:
        results = hammer(urls, shop.key, asks)
    assert {status for status, _ in results} == {200}
    counts = proposed(shop.db)
    assert sum(n for (_p, offer), n in counts.items() if offer == "RARE") == 5
    assert sum(n for (_p, offer), n in counts.items() if offer == "BIG") == 40


def test_a_deployment_and_a_rollback_swap_plans_under_load(shop: Deployed) -> None:
    ask = {"placements": [{"placement": "banner"}]}  # anonymous: no cap, BIG every time
    seen: list[tuple[int, int, str]] = []
    stop = threading.Event()

    def load(url: str) -> None:
        with httpx.Client(headers={"X-API-Key": shop.key}, timeout=30) as client:
            while not stop.is_set():
                answer = client.post(f"{url}/v1/decisions", json=ask)
                body = answer.json()
                text = (
                    body["placements"][0]["offers"][0]["content"]["text"]
                    if answer.is_success
                    else ""
                )
                seen.append((answer.status_code, body.get("deployment", 0), text))

    with nodes(shop.db, 1) as (url,):
        threads = [threading.Thread(target=load, args=(url,)) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            _wait_for(seen, 50)
            with shop.db.session() as s:
                from overture.design import transfer
                from tests.design.helpers import ADMIN

                transfer.import_catalog(
                    s, ADMIN, {"shop.yaml": SHOP.replace('"Big {{', '"Big v2 {{')}
                )
                approve_all(s)
                deployments.deploy(s, DEPLOYER, "staging")
            _wait_for_deployment(seen, 2)
            with shop.db.session() as s:
                deployments.rollback(s, DEPLOYER, "staging", to=1)
            _wait_for_deployment(seen, 3)
            _wait_for(seen, len(seen) + 50)
        finally:
            stop.set()
            for t in threads:
                t.join()
    assert {status for status, _, _ in seen} == {200}
    by_deployment: dict[int, set[str]] = {}
    for _, number, text in seen:
        by_deployment.setdefault(number, set()).add(text)
    assert by_deployment == {1: {"Big deal"}, 2: {"Big v2 deal"}, 3: {"Big deal"}}
    order = [number for _, number, _ in seen]
    assert order.index(2) < order.index(3)


def _wait_for(seen: list[Any], count: int) -> None:
    import time

    deadline = time.monotonic() + 30
    while len(seen) < count:
        assert time.monotonic() < deadline, "the load made no progress"
        time.sleep(0.01)


def _wait_for_deployment(seen: list[tuple[int, int, str]], number: int) -> None:
    import time

    deadline = time.monotonic() + 30
    while not any(n == number for _, n, _ in seen[-20:]):
        assert time.monotonic() < deadline, f"deployment #{number} was not picked up"
        time.sleep(0.01)


def test_after_losing_a_race_a_node_reads_versions_and_stops_deciding_twice(
    shop: Deployed, counters: dict[str, Any]
) -> None:
    """Two nodes taking turns on one profile: each holds the profile's history in its cache
    and the other changes it. The first stale decision loses its claim and is made again;
    from then on the node checks the profile's version before deciding with its cache, so
    the turns that follow lose nothing, and every answer respects the cap."""
    ask = {"profile_id": "turns", "placements": [{"placement": "banner"}]}

    def conflicts(url: str) -> float:
        text = httpx.get(f"{url}/metrics").text
        lines = [x for x in text.splitlines() if x.startswith("overture_claim_conflicts_total")]
        return sum(float(x.rsplit(" ", 1)[1]) for x in lines)

    with (
        nodes(shop.db, 2, **counters) as (a, b),
        httpx.Client(headers={"X-API-Key": shop.key}) as client,
    ):
        for turn in range(8):
            for url in (a, b):
                assert client.post(f"{url}/v1/decisions", json=ask).status_code == 200, turn
        lost = conflicts(a) + conflicts(b)
    assert 1 <= lost <= 2  # each node loses once, at most, then reads versions
    assert proposed(shop.db) == {("turns", "BIG"): 2, ("turns", "RARE"): 2, ("turns", "HELLO"): 12}
