"""Two runtime nodes sharing Redis (and the database): a visit may go to either.

A session started on one node continues on the other, idle ones expire, one ended on one
node is ended for both; and an event posted to one node shapes the decisions of the other
(capping and suppression). Each node is an app of its own (its own RuntimeNode, event
loop, recorder and caches), as behind a load balancer. Needs OVERTURE_TEST_REDIS_URL.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from sqlalchemy import select
from starlette.testclient import TestClient

from overture.store.history import EventRow
from tests.deployed import Deployed
from tests.integration import redis_url
from tests.runtime.test_servlet import SERVLET, START

pytestmark = pytest.mark.integration


@pytest.fixture
def shared() -> Iterator[dict[str, Any]]:
    """Node settings: sessions and counters in Redis, under a prefix of their own (whose
    keys are deleted afterwards)."""
    url = redis_url()
    prefix = f"test-{secrets.token_hex(4)}"
    yield {"redis": url, "redis_prefix": prefix}
    with redis.Redis.from_url(url) as client:
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)


@contextlib.contextmanager
def two_nodes(deployed: Deployed, **settings: Any) -> Iterator[tuple[TestClient, TestClient]]:
    with deployed.client(**settings) as a, deployed.client(**settings) as b:
        assert a.app.state.node is not b.app.state.node  # type: ignore[attr-defined]
        yield a, b


def hero(session: str) -> dict[str, Any]:
    return {"session_id": session, "placements": [{"placement": "web_account_sidebar"}]}


def test_a_session_started_on_one_node_continues_on_the_other(
    demo: Deployed, shared: dict[str, Any]
) -> None:
    with two_nodes(demo, **shared) as (a, b):
        started = a.post("/v1/sessions", json={"session_id": "v-1", "context": {"n": 2**70}})
        assert started.status_code == 201, started.text
        assert b.get("/v1/sessions/v-1").json()["context"] == {"n": 2**70}

        # a decision and an event in the session, on B
        answer = b.post("/v1/decisions", json=hero("v-1"))
        assert answer.status_code == 200, answer.text
        assert answer.json()["session_id"] == "v-1" and answer.json()["profile_id"] is None
        codes = [o["tracking_code"] for o in answer.json()["placements"][0]["offers"]]
        contact = b.post("/v1/events", json={"name": "contact", "session_id": "v-1"}).json()
        assert contact["stored"] == len(codes) > 0  # every offer of the session's last answer
        assert a.get("/v1/sessions/v-1").json()["last"] == codes

        # the visitor logs in on B; A's next decision is for the customer
        assert b.put("/v1/sessions/v-1/audience", json={"profile_id": "C0000042"}).is_success
        known = a.post("/v1/decisions", json=hero("v-1")).json()
        assert known["profile_id"] == "C0000042" and "warnings" not in known  # in the table
        assert a.get("/v1/sessions/v-1").json()["profile_id"] == "C0000042"


def test_an_interact_visit_moves_between_nodes(demo: Deployed, shared: dict[str, Any]) -> None:
    def batch(node: TestClient, *commands: dict[str, Any]) -> list[dict[str, Any]]:
        answer = node.post(SERVLET, json={"sessionId": "i-1", "commands": list(commands)})
        assert answer.status_code == 200, answer.text
        assert answer.json()["batchStatusCode"] == 0, answer.text
        responses: list[dict[str, Any]] = answer.json()["responses"]
        return responses

    anonymous = {**START, "audienceID": []}
    with two_nodes(demo, **shared) as (a, b):
        batch(a, anonymous)
        offers, _contact = batch(
            b,
            {"action": "getOffers", "ip": "web_home_hero", "numberRequested": 1},
            {"action": "postEvent", "event": "Contact"},  # for every offer of the last list
        )
        (offer,) = offers["offerLists"][0]["offers"]
        with demo.db.session() as s:
            logged = s.execute(select(EventRow.kind, EventRow.tracking_code, EventRow.session_id))
            assert [tuple(row) for row in logged] == [("presented", offer["treatmentCode"], "i-1")]
        identify = {k: START[k] for k in ("audienceLevel", "audienceID")}
        batch(b, {"action": "setAudience", **identify})
        offers, profile = batch(
            a,
            {"action": "getOffers", "ip": "web_home_hero", "numberRequested": 1},
            {"action": "getProfile"},
        )
        assert offers["offerLists"][0]["ip"] == "web_home_hero"
        values = {p["n"]: p["v"] for p in profile["profile"]}
        assert values["customer_id"] == "C0000042" and values["device"] == "mobile"
        assert values["age"] is not None  # looked up in the profile table, kept in Redis


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # sessions only: any will do
def test_idle_sessions_expire_and_each_use_renews_them(
    demo: Deployed, shared: dict[str, Any]
) -> None:
    with two_nodes(demo, **shared, session_idle_seconds=0.8) as (a, b):
        assert a.post("/v1/sessions", json={"session_id": "v-1"}).status_code == 201
        time.sleep(0.5)
        assert b.get("/v1/sessions/v-1").status_code == 200  # renewed: 0.8 s from now
        time.sleep(0.5)
        assert a.get("/v1/sessions/v-1").status_code == 200  # 1 s after it started
        time.sleep(1.0)
        gone = b.get("/v1/sessions/v-1")
        assert gone.status_code == 404 and "expired" in gone.json()["detail"]
        assert a.get("/v1/sessions/v-1").status_code == 404


def test_a_session_ended_on_one_node_is_ended_on_the_other(
    demo: Deployed, shared: dict[str, Any]
) -> None:
    with two_nodes(demo, **shared) as (a, b):
        a.post(SERVLET, json={"sessionId": "v-1", "commands": [START]})
        assert b.get("/v1/sessions/v-1").status_code == 200
        ended = b.post(SERVLET, json={"sessionId": "v-1", "commands": [{"action": "endSession"}]})
        assert ended.json()["batchStatusCode"] == 0, ended.text
        assert a.get("/v1/sessions/v-1").status_code == 404
        after = a.post(
            SERVLET,
            json={
                "sessionId": "v-1",
                "commands": [{"action": "getOffers", "ip": "web_home_hero", "numberRequested": 1}],
            },
        ).json()
        assert after["responses"][0]["messages"][0]["msgCode"] == 1  # no such session
        a.post("/v1/sessions", json={"session_id": "v-2"})
        assert b.delete("/v1/sessions/v-2").status_code == 204
        assert a.delete("/v1/sessions/v-2").status_code == 404


def test_an_event_posted_to_one_node_shapes_the_decisions_of_the_other(
    shop: Deployed, shared: dict[str, Any]
) -> None:
    """SHOP: deals are capped at 2 presentations per offer a week, and an offer closed
    (rejected) is not proposed to that visitor again. B's first decision for each visitor
    leaves B holding their history; the event that changes it goes to A."""

    def banner(node: TestClient, visitor: str) -> tuple[str, str]:
        ask = {"profile_id": visitor, "placements": [{"placement": "banner"}]}
        answer = node.post("/v1/decisions", json=ask)
        assert answer.status_code == 200, answer.text
        (offer,) = answer.json()["placements"][0]["offers"]
        return offer["offer"], offer["tracking_code"]

    with two_nodes(shop, **shared) as (a, b):
        # capping: a presentation reported to A (an email sent) is the second of BIG
        assert banner(b, "v1")[0] == "BIG"
        sent = {"name": "view", "offer": "BIG", "profile_id": "v1", "channel": "web"}
        assert a.post("/v1/events", json=sent).json()["stored"] == 1
        assert banner(b, "v1")[0] == "RARE"

        # suppression: the visitor closes BIG, A hears of it
        offer, code = banner(b, "v2")
        assert offer == "BIG"
        assert a.post("/v1/events", json={"name": "close", "tracking_code": code}).is_success
        assert banner(b, "v2")[0] == "RARE"

        # without either event, B would have proposed BIG again
        assert banner(b, "v3")[0] == "BIG"
        assert banner(b, "v3")[0] == "BIG"
