"""Sessions: a visit's audience, profile and context carried between calls."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.testclient import TestClient

from overture.runtime.sessions import MemorySessions, Session
from tests.deployed import Deployed


def test_a_session_carries_the_profile_and_its_answers(api: TestClient) -> None:
    started = api.post(
        "/v1/sessions",
        json={"session_id": "s-1", "profile_id": "C0000042", "context": {"device": "mobile"}},
    )
    assert started.status_code == 201
    assert started.json()["profile_id"] == "C0000042"
    answer = api.post(
        "/v1/decisions",
        json={"session_id": "s-1", "placements": [{"placement": "web_account_sidebar"}]},
    ).json()
    assert answer["profile_id"] == "C0000042" and answer["session_id"] == "s-1"
    codes = [o["tracking_code"] for o in answer["placements"][0]["offers"]]
    session = api.get("/v1/sessions/s-1").json()
    assert session["last"] == codes and session["context"] == {"device": "mobile"}


def _answered_in_a_session(api: TestClient) -> list[dict[str, Any]]:
    """The offers of a decision in session s-1 (a known customer's, on the sidebar)."""
    api.post("/v1/sessions", json={"session_id": "s-1", "profile_id": "C0000042"})
    answer = api.post(
        "/v1/decisions",
        json={"session_id": "s-1", "placements": [{"placement": "web_account_sidebar"}]},
    ).json()
    offers: list[dict[str, Any]] = answer["placements"][0]["offers"]
    return offers


def test_a_contact_without_tracking_code_logs_every_offer_of_the_last_answer(
    api: TestClient,
) -> None:
    offers = _answered_in_a_session(api)
    result = api.post(
        "/v1/events", json={"name": "contact", "session_id": "s-1", "event_id": "c"}
    ).json()
    assert result["stored"] == len(offers) > 1
    assert [r["event_id"] for r in result["results"]] == [f"c.{i + 1}" for i in range(len(offers))]


def test_offers_responded_to_in_a_session_are_left_out_of_its_later_answers(
    api: TestClient,
) -> None:
    api.post("/v1/sessions", json={"session_id": "s-1", "profile_id": "C0000042"})
    ask = {"session_id": "s-1", "placements": [{"placement": "web_account_sidebar"}]}
    first = api.post("/v1/decisions", json=ask).json()["placements"][0]["offers"][0]
    api.post(
        "/v1/events",
        json={"name": "dismiss", "tracking_code": first["tracking_code"], "session_id": "s-1"},
    )
    assert api.get("/v1/sessions/s-1").json()["responded"] == [first["offer"]]
    again = api.post("/v1/decisions", json=ask).json()["placements"][0]["offers"]
    assert first["offer"] not in [o["offer"] for o in again]


def test_an_anonymous_visitor_logs_in(api: TestClient) -> None:
    api.post("/v1/sessions", json={"session_id": "s-1"})
    anonymous = api.post(
        "/v1/decisions", json={"session_id": "s-1", "placements": [{"placement": "web_home_hero"}]}
    ).json()
    assert anonymous["profile_id"] is None
    switched = api.put("/v1/sessions/s-1/audience", json={"profile_id": "C0000042"})
    assert switched.json()["profile_id"] == "C0000042"
    known = api.post(
        "/v1/decisions", json={"session_id": "s-1", "placements": [{"placement": "web_home_hero"}]}
    ).json()
    assert known["profile_id"] == "C0000042"


def test_ending_and_unknown_sessions(api: TestClient) -> None:
    api.post("/v1/sessions", json={"session_id": "s-1"})
    assert api.delete("/v1/sessions/s-1").status_code == 204
    assert api.delete("/v1/sessions/s-1").status_code == 404
    gone = api.post(
        "/v1/decisions", json={"session_id": "s-1", "placements": [{"placement": "web_home_hero"}]}
    )
    assert gone.status_code == 404 and "start one" in gone.json()["detail"]


def test_sessions_expire_when_idle(demo: Deployed) -> None:
    with demo.client(session_idle_seconds=0.2) as api:
        api.post("/v1/sessions", json={"session_id": "s-1"})
        assert api.get("/v1/sessions/s-1").status_code == 200
        time.sleep(0.3)
        assert api.get("/v1/sessions/s-1").status_code == 404


def test_the_memory_store_is_bounded() -> None:
    async def run() -> MemorySessions:
        store = MemorySessions(idle_seconds=60, max_sessions=3)
        for i in range(5):
            await store.put(Session(id=f"s{i}", environment="e", audience="a"))
        await store.get("e", "s2")  # used: kept over s3
        await store.put(Session(id="s5", environment="e", audience="a"))
        return store

    store = asyncio.run(run())
    assert store.count() == 3 and store.evicted == 3
    held = asyncio.run(_ids(store))
    assert held == ["s2", "s4", "s5"]


async def _ids(store: MemorySessions) -> list[str]:
    return [s for s in ("s0", "s1", "s2", "s3", "s4", "s5") if await store.get("e", s)]


def test_a_contact_with_the_longest_event_id_logs_every_offer_once(api: TestClient) -> None:
    """An event id of the most characters allowed: each offer's contact gets an id that
    still fits (the history's column holds 128), stored once however often it is sent."""
    offers = _answered_in_a_session(api)
    contact = {"name": "contact", "session_id": "s-1", "event_id": "é" * 128}
    first = api.post("/v1/events", json=contact)
    assert first.status_code == 200, first.text
    ids = [r["event_id"] for r in first.json()["results"]]
    assert first.json()["stored"] == len(offers) > 1
    assert len(set(ids)) == len(ids) and all(len(i) <= 128 for i in ids)
    again = api.post("/v1/events", json=contact).json()
    assert (again["stored"], again["duplicates"]) == (0, len(offers))
    assert [r["event_id"] for r in again["results"]] == ids
