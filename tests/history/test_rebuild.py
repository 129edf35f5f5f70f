"""Counters rebuilt from the history (overture.history.rebuild): when the database's
inventory counters or Redis's counts are lost or wrong, a rebuild restores exactly what the
nodes had counted, and the caps, suppressions and inventories hold as they did."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from sqlalchemy import delete, insert, select, update
from starlette.testclient import TestClient

from overture.history.deployed import NotDeployed
from overture.history.rebuild import RebuildStopped, rebuild_counters
from overture.store import Database
from overture.store.history import InventoryCounterRow, PropositionRow
from tests.deployed import Deployed, deploy
from tests.runtime.catalogs import SHOP

ENV = "staging"


@pytest.fixture
def redis_prefix() -> Iterator[tuple[redis.Redis, str, str]]:
    """A Redis client, its URL and a key prefix of the test's own (its keys deleted after)."""
    url = os.environ.get("OVERTURE_TEST_REDIS_URL")
    if not url:
        pytest.skip(
            "set OVERTURE_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0) to run the Redis "
            "rebuild tests; .ci/run sets it"
        )
    client = redis.Redis.from_url(url)
    prefix = f"test-{secrets.token_hex(4)}"
    try:
        yield client, url, prefix
    finally:
        flush(client, prefix)
        client.close()


def flush(client: redis.Redis, prefix: str) -> None:
    """Delete the prefix's keys, as if Redis had started again empty."""
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


def banner(api: TestClient, visitor: str, **extra: object) -> dict[str, Any]:
    body = {"profile_id": visitor, "placements": [{"placement": "banner"}], **extra}
    answer = api.post("/v1/decisions", json=body)
    assert answer.status_code == 200, answer.text
    offers: list[dict[str, Any]] = answer.json()["placements"][0]["offers"]
    return offers[0] if offers else {}


def sidebar(api: TestClient, visitor: str) -> list[str]:
    body = {"profile_id": visitor, "placements": [{"placement": "sidebar", "count": 2}]}
    answer = api.post("/v1/decisions", json=body)
    assert answer.status_code == 200, answer.text
    return [o["offer"] for o in answer.json()["placements"][0]["offers"]]


def spend(api: TestClient) -> None:
    """Use up what the SHOP's policies allow: RARE's 5 a day, visitors' 2 deals a week,
    a suppression (closer closes BIG) and an untracked presentation (walker was shown BIG
    by email)."""
    closed = banner(api, "closer")
    assert closed["offer"] == "BIG"
    seen = {
        f"visitor{i}": [banner(api, f"visitor{i}")["offer"] for _ in range(3)] for i in range(6)
    }
    assert seen["visitor0"] == ["BIG", "BIG", "RARE"]
    assert seen["visitor5"] == ["BIG", "BIG", "HELLO"]  # RARE: 5 today, all gone
    events = [
        {"name": "close", "tracking_code": closed["tracking_code"]},
        {"name": "view", "offer": "BIG", "profile_id": "walker"},
    ]
    assert api.post("/v1/events", json={"events": events}).json()["stored"] == 2


def policies_hold(api: TestClient) -> None:
    """After `spend`, every policy still has what it counted."""
    assert sidebar(api, "late") == ["BIG"]  # RARE is not proposed beyond 5 today
    assert banner(api, "visitor1")["offer"] == "HELLO"  # had its 2 BIG (and RARE is gone)
    assert banner(api, "closer")["offer"] == "HELLO"  # closed BIG: suppressed for ever
    # walker's emailed BIG counts: one more BIG, then the cap
    assert [banner(api, "walker")["offer"] for _ in range(2)] == ["BIG", "HELLO"]


def inventory(db: Database) -> dict[tuple[str, str], int]:
    with db.session() as s:
        rows = s.execute(
            select(
                InventoryCounterRow.offer_code, InventoryCounterRow.period, InventoryCounterRow.used
            ).where(InventoryCounterRow.environment == ENV)
        ).all()
    return {(offer, period): used for offer, period, used in rows}


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def redis_state(client: redis.Redis, prefix: str) -> tuple[dict[bytes, Any], dict[bytes, int]]:
    """(every key but the versions -> its content, versions), under `prefix`; the ledger's
    bookkeeping (when the counters were built, the notes of claims to settle) left out."""
    content: dict[bytes, Any] = {}
    versions: dict[bytes, int] = {}
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        if key.endswith((b":counters", b":claims")):
            continue
        if key.endswith(b":v"):
            versions[key] = int(client.get(key) or 0)
        elif client.type(key) == b"zset":
            content[key] = client.zrange(key, 0, -1, withscores=True)
        else:
            content[key] = client.get(key)
    return content, versions


# -- in the database -----------------------------------------------------------------------
def test_inventory_counters_lost_or_wrong_are_rebuilt(shop: Deployed) -> None:
    with shop.client() as api:
        spend(api)
    original = inventory(shop.db)
    assert original == {("RARE", today()): 5}

    with shop.db.session() as s:  # wrong counts, a counter for nothing
        s.execute(update(InventoryCounterRow).values(used=0))
        s.execute(
            insert(InventoryCounterRow).values(
                environment=ENV, offer_code="BIG", period="total", used=99
            )
        )
    summary = rebuild_counters(shop.db, ENV)
    assert inventory(shop.db) == original
    assert (summary.inventory_counters, summary.inventory, summary.redis) == (1, original, False)
    with shop.client() as api:  # a node started afresh
        policies_hold(api)

    with shop.db.session() as s:  # lost
        s.execute(delete(InventoryCounterRow))
    rebuild_counters(shop.db, ENV)
    assert inventory(shop.db) == original  # policies_hold proposed no RARE
    with shop.client() as api:
        assert sidebar(api, "later") == ["BIG"]


def test_inventory_counts_per_day_and_in_total_where_its_policies_apply(
    database: Database,
) -> None:
    # BIG draws on a lifetime inventory on the sidebar only
    extra = "  - {name: big_sidebar, kind: inventory, offers: [BIG], placements: [sidebar], "
    deploy(database, {"shop.yaml": SHOP + extra + "limit: 100, per: total}\n"})
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = [
        ("RARE", "banner", now),
        ("RARE", "sidebar", now),
        ("RARE", "banner", now - dt.timedelta(days=1)),
        ("RARE", "banner", now - dt.timedelta(days=3)),
        ("BIG", "banner", now),  # not on the sidebar: not counted
        ("BIG", "sidebar", now),
        ("BIG", "sidebar", now - dt.timedelta(days=3)),
        ("HELLO", "banner", now),  # no inventory
    ]
    record(database, rows)
    summary = rebuild_counters(database, ENV)
    day = [(now - dt.timedelta(days=d)).date().isoformat() for d in range(4)]
    expected = {("RARE", day[0]): 2, ("RARE", day[1]): 1, ("RARE", day[3]): 1, ("BIG", "total"): 2}
    assert inventory(database) == expected
    assert summary.inventory == expected and summary.inventory_counters == 4


def record(db: Database, rows: list[tuple[str, str, dt.datetime]]) -> None:
    """Propositions as the runtime records them, at the times given."""
    with db.session() as s:
        s.execute(
            insert(PropositionRow),
            [
                {
                    "tracking_code": secrets.token_hex(8),
                    "environment": ENV,
                    "deployment": 1,
                    "audience": "visitor",
                    "profile_id": f"p{i}",
                    "session_id": None,
                    "placement": placement,
                    "channel": "web",
                    "offer_code": offer,
                    "categories": "deals",
                    "rank": 1,
                    "score": 1.0,
                    "probability": 1.0,
                    "fallback": False,
                    "decided_at": at,
                }
                for i, (offer, placement, at) in enumerate(rows)
            ],
        )


def test_an_environment_that_cannot_be_rebuilt_is_told(shop: Deployed) -> None:
    with pytest.raises(NotDeployed, match=r"no environment 'stagin'; did you mean 'staging'\?"):
        rebuild_counters(shop.db, "stagin")
    with pytest.raises(NotDeployed, match="'production' has no deployment yet"):
        rebuild_counters(shop.db, "production")


# -- in Redis --------------------------------------------------------------------------------
def test_redis_lost_its_data_and_the_rebuild_restores_every_count(
    shop: Deployed, redis_prefix: tuple[redis.Redis, str, str]
) -> None:
    client, url, prefix = redis_prefix
    settings = {"redis": url, "redis_prefix": prefix}
    with shop.client(**settings) as api:
        spend(api)
    original, versions = redis_state(client, prefix)
    rare = f"{prefix}:{ENV}:inventory:RARE:{today()}".encode()
    assert original[rare] == b"5"
    assert len(versions) == 8  # closer, visitor0 to 5, walker

    flush(client, prefix)
    assert client.get(f"{prefix}:{ENV}:counters") is None  # the nodes know they are gone

    summary = rebuild_counters(shop.db, ENV, redis_url=url, redis_prefix=prefix, batch=3)
    rebuilt, new_versions = redis_state(client, prefix)
    assert rebuilt == original
    assert new_versions.keys() == versions.keys()
    assert all(new_versions[k] > v for k, v in versions.items())
    assert (summary.profiles, summary.inventory_keys, summary.cleared) == (8, 1, 0)
    assert client.get(f"{prefix}:{ENV}:counters") is not None
    assert summary.entries == sum(len(v) for v in original.values() if isinstance(v, list))
    assert inventory(shop.db) == {("RARE", today()): 5}  # the database's too
    assert 0 < client.ttl(rare) <= 2 * 86400  # a day's counter expires as the nodes' do

    with shop.client(**settings) as api:
        policies_hold(api)


def test_a_rebuild_told_to_stop_writes_no_counters_key_and_releases_its_lock(
    shop: Deployed, redis_prefix: tuple[redis.Redis, str, str]
) -> None:
    """A node's rebuild runs in a thread, which cancelling its task does not stop: the node
    closing sets `stop`, and the rebuild ends between two profiles without writing the
    counters key (so the next node rebuilds) and without holding the lock."""
    client, url, prefix = redis_prefix
    with shop.client(redis=url, redis_prefix=prefix) as api:
        spend(api)
    flush(client, prefix)
    stop = threading.Event()
    stop.set()
    with pytest.raises(RebuildStopped):
        rebuild_counters(shop.db, ENV, redis_url=url, redis_prefix=prefix, stop=stop)
    assert client.get(f"{prefix}:{ENV}:counters") is None
    assert client.get(f"{prefix}:{ENV}:counters:lock") is None
    # waiting for another node's rebuild (its lock held), it stops too, at once
    client.set(f"{prefix}:{ENV}:counters:lock", "another node", px=60_000)
    stop = threading.Event()
    outcome: list[BaseException] = []

    def waiting() -> None:
        try:
            rebuild_counters(shop.db, ENV, redis_url=url, redis_prefix=prefix, stop=stop)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=waiting)
    thread.start()
    time.sleep(0.3)
    assert thread.is_alive()  # still waiting for the lock
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive() and isinstance(outcome[0], RebuildStopped)
    client.delete(f"{prefix}:{ENV}:counters:lock")

    summary = rebuild_counters(shop.db, ENV, redis_url=url, redis_prefix=prefix)
    assert summary.profiles == 8 and client.get(f"{prefix}:{ENV}:counters") is not None


def test_a_node_starting_on_an_emptied_redis_rebuilds_before_it_serves(
    shop: Deployed, redis_prefix: tuple[redis.Redis, str, str]
) -> None:
    """Redis lost its data while the nodes were away: a node that starts finds the counters
    key gone and rebuilds the counts from the history before it answers, so the caps,
    suppressions and inventories hold from its first decision (they did not: a fresh node
    on a restarted Redis proposed past a weekly cap of 3 to 888 profile/offer pairs)."""
    client, url, prefix = redis_prefix
    settings = {"redis": url, "redis_prefix": prefix}
    with shop.client(**settings) as api:
        spend(api)
    original, _versions = redis_state(client, prefix)
    flush(client, prefix)
    with shop.client(**settings) as api:
        policies_hold(api)
        body = api.get("/readyz").json()
        assert body["dependencies"]["redis"]["counters"] == {ENV: "ready"}
        assert "overture_counters_rebuilt 1.0" in api.get("/metrics").text
    rebuilt, _versions = redis_state(client, prefix)
    for key, value in original.items():  # what policies_hold added aside
        if isinstance(value, list):
            assert set(value) <= set(rebuilt[key]), key


def test_a_node_whose_redis_is_emptied_while_it_serves_claims_nothing_until_rebuilt(
    shop: Deployed, redis_prefix: tuple[redis.Redis, str, str]
) -> None:
    """Redis emptied under a running node (a restart without persistence, a flush): the
    node's next claim finds the counters key gone and is refused, so nothing policies count
    is proposed on counts that are no longer there; the node rebuilds them from the
    history (within a second or so) and decides as before."""
    client, url, prefix = redis_prefix
    settings = {"redis": url, "redis_prefix": prefix, "probe_seconds": 0.1}
    with shop.client(**settings) as api:
        spend(api)
        flush(client, prefix)
        answer = api.post(
            "/v1/decisions",
            json={"profile_id": "visitor1", "placements": [{"placement": "banner"}]},
        ).json()
        assert answer["placements"][0]["offers"] == []  # degraded: nothing counted proposed
        assert answer["degraded"] == ["counts"]
        deadline = time.monotonic() + 20
        while api.get("/readyz").json()["dependencies"]["redis"]["counters"] != {ENV: "ready"}:
            assert time.monotonic() < deadline, "the counters were not rebuilt"
            time.sleep(0.05)
        policies_hold(api)


def test_nodes_serving_through_the_rebuild_read_again(
    shop: Deployed, redis_prefix: tuple[redis.Redis, str, str]
) -> None:
    client, url, prefix = redis_prefix
    settings = {"redis": url, "redis_prefix": prefix}
    with shop.client(**settings) as a, shop.client(**settings) as b:
        assert banner(a, "x")["offer"] == "BIG"  # node a keeps x's history (one BIG)
        assert banner(b, "x")["offer"] == "BIG"  # node b records a second one
        flush(client, prefix)
        rebuild_counters(shop.db, ENV, redis_url=url, redis_prefix=prefix)
        # a's copy of x's history is outdated: its claim conflicts with the rebuilt
        # version (never one a node could hold), so it reads x again and sees the cap
        assert banner(a, "x")["offer"] == "RARE"


def test_what_the_history_does_not_hold_is_dropped_and_recent_writes_are_kept(
    shop: Deployed, redis_prefix: tuple[redis.Redis, str, str]
) -> None:
    client, url, prefix = redis_prefix
    settings = {"redis": url, "redis_prefix": prefix}
    with shop.client(**settings) as api:
        spend(api)
    original, _versions = redis_state(client, prefix)
    base = f"{prefix}:{ENV}:visitor"
    now = time.time()
    junk = "junk|presented|RARE|web|deals"
    pending = "pending|presented|RARE|web|deals"  # claimed by a node, not in the database yet
    client.zadd(f"{base}:visitor0:p", {junk: now - 3600, pending: now})
    client.set(f"{base}:visitor0:v", 10**13)  # versions never go down
    client.zadd(f"{base}:ghost:r", {"e1|rejected|BIG|web|deals": now - 3600})
    client.set(f"{base}:ghost:v", 3)
    client.set(f"{prefix}:{ENV}:inventory:BIG:total", 99)
    client.set(f"{prefix}:{ENV}:inventory:RARE:{today()}", 0)

    summary = rebuild_counters(shop.db, ENV, redis_url=url, redis_prefix=prefix)
    rebuilt, versions = redis_state(client, prefix)
    visitor0 = f"{base}:visitor0:p".encode()
    assert [m for m, _score in rebuilt.pop(visitor0)] == [
        m for m, _score in original.pop(visitor0)
    ] + [pending.encode()]
    assert rebuilt == original  # no ghost, no BIG counter, RARE's 5 today
    assert versions[f"{base}:visitor0:v".encode()] > 10**13
    assert versions[f"{base}:ghost:v".encode()] > 3
    assert summary.cleared == 1
