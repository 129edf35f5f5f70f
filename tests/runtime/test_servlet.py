"""The Interact-compatible servlet answers batches as Interact does."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.testclient import TestClient

from overture.store.history import EventRow
from tests.deployed import Deployed

SERVLET = "/interact/servlet/RestServlet"


def batch(api: TestClient, commands: list[dict[str, Any]], session: str = "s-1") -> Any:
    answer = api.post(SERVLET, json={"sessionId": session, "commands": commands})
    assert answer.status_code == 200, answer.text
    return answer.json()


START = {
    "action": "startSession",
    "ic": "Web",
    "audienceLevel": "Customer",
    "audienceID": [{"n": "CustomerID", "v": "C0000042", "t": "string"}],
    "relyOnExistingSession": False,
    "debug": False,
    "parameters": [{"n": "device", "v": "mobile", "t": "string"}],
}


def test_a_visit_as_interact_touchpoints_make_it(api: TestClient, demo: Deployed) -> None:
    body = batch(
        api,
        [
            START,
            {"action": "getOffers", "ip": "web_account_sidebar", "numberRequested": 2},
            {"action": "getProfile"},
        ],
    )
    assert body["batchStatusCode"] == 0
    start, offers, profile = body["responses"]
    assert start == {
        "sessionId": "s-1",
        "statusCode": 0,
        "version": start["version"],
        "offerLists": None,
        "profile": None,
        "messages": [],
    }
    (offer_list,) = offers["offerLists"]
    assert offer_list["ip"] == "web_account_sidebar" and len(offer_list["offers"]) == 2
    offer = offer_list["offers"][0]
    assert set(offer) == {"n", "code", "treatmentCode", "score", "desc", "attributes"}
    assert isinstance(offer["score"], int) and offer["code"][0]
    attributes = {a["n"]: a for a in offer["attributes"]}  # content fields, offer attributes
    assert attributes["title"]["t"] == "string" and attributes["title"]["v"]
    assert attributes["product_type"] == {"n": "product_type", "v": "savings", "t": "string"}
    values = {p["n"]: p for p in profile["profile"]}
    assert values["customer_id"] == {"n": "customer_id", "v": "C0000042", "t": "string"}
    assert values["age"]["t"] == "numeric" and values["device"]["v"] == "mobile"

    treatment = offer["treatmentCode"]
    body = batch(
        api,
        [
            {
                "action": "postEvent",
                "event": "Accept",
                "parameters": [{"n": "UACIOfferTrackingCode", "v": treatment, "t": "string"}],
            },
            {"action": "endSession"},
        ],
    )
    assert body["batchStatusCode"] == 0, body
    with demo.db.session() as s:
        event = s.execute(select(EventRow.kind, EventRow.offer_code, EventRow.session_id)).one()
    assert tuple(event) == ("accepted", offer["code"][0], "s-1")
    after = batch(api, [{"action": "getOffers", "ip": "web_home_hero", "numberRequested": 1}])
    assert after["batchStatusCode"] == 2
    assert after["responses"][0]["messages"][0]["msgCode"] == 1  # no such session


def test_several_interaction_points_without_duplicates(api: TestClient) -> None:
    requests = [
        {"ip": "web_account_sidebar", "numberRequested": 3, "dupPolicy": 1},
        {"ip": "web_product_banner", "numberRequested": 2, "dupPolicy": 1},
    ]
    body = batch(
        api,
        [START, {"action": "getOffersForMultipleInteractionPoints", "getOfferRequests": requests}],
    )
    lists = body["responses"][1]["offerLists"]
    assert [x["ip"] for x in lists] == ["web_account_sidebar", "web_product_banner"]
    codes = [o["code"][0] for x in lists for o in x["offers"]]
    assert len(codes) == len(set(codes)) > 2


def test_mistakes_are_messages_and_the_batch_goes_on(api: TestClient) -> None:
    body = batch(
        api,
        [
            {**START, "ic": "Kiosk"},
            START,
            {"action": "getOffers", "ip": "Nowhere", "numberRequested": 1},
            {"action": "getOffers", "ip": "web_home_hero", "numberRequested": 0},
            {"action": "postEvent", "event": "Wave"},
            {
                "action": "postEvent",
                "event": "Accept",
                "parameters": [{"n": "UACIOfferTrackingCode", "v": "bogus", "t": "string"}],
            },
            {"action": "fly"},
            {"action": "getVersion"},
            {"action": "getOffers", "ip": "WEB_HOME_HERO", "numberRequested": 1},
        ],
    )
    statuses = [r["statusCode"] for r in body["responses"]]
    assert statuses == [2, 0, 2, 2, 1, 2, 2, 0, 0]
    assert body["batchStatusCode"] == 2
    codes = [r["messages"][0]["msgCode"] if r["messages"] else None for r in body["responses"]]
    assert codes == [2, None, 3, 7, 4, 9, 10, 0, None]
    first = body["responses"][0]["messages"][0]
    assert "'Kiosk'" in first["msg"] and "web" in first["detailMsg"]
    assert body["responses"][-1]["offerLists"][0]["ip"] == "web_home_hero"


def test_an_unknown_profile_is_a_warning(api: TestClient) -> None:
    start = {**START, "audienceID": [{"n": "CustomerID", "v": "NOBODY", "t": "string"}]}
    body = batch(api, [start])
    assert body["batchStatusCode"] == 1
    assert body["responses"][0]["messages"][0]["msgCode"] == 6


def test_credentials_as_interact_sends_them(demo: Deployed) -> None:
    with demo.client() as api:
        headers = {"X-API-Key": "", "m_user_name": "web", "m_user_password": demo.key}
        ok = api.post(SERVLET, json={"sessionId": "s", "commands": [START]}, headers=headers)
        assert ok.status_code == 200 and ok.json()["batchStatusCode"] == 0
        refused = api.post(SERVLET, json={"commands": []}, headers={"X-API-Key": "wrong"})
        assert refused.status_code == 401
        malformed = api.post(SERVLET, content=b"not json")
        assert malformed.status_code == 400 and "commands" in malformed.json()["detail"]
