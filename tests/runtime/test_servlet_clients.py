"""HCL's own Interact clients work against the servlet (issue 18).

The bodies below are what HCL's TypeScript Interact SDK (HCL-CDP-TA/interact-web-sdk,
src/InteractClient.ts) sends, field for field: `JSON.stringify` leaves out what is
`undefined`, so a session id the client does not have is no key at all (or `null`, from
InteractServletClient), and a command's unset `parameters` are not sent. The SDK decides
that a session is gone from a message of level 2 and code 1 whose text holds one of the
phrases in SDK_SESSION_PHRASES, and then sends its recovery batch.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from overture.catalog import ChannelEvents
from overture.store.history import EventRow
from tests.deployed import Deployed
from tests.runtime.test_servlet import SERVLET

AUDIENCE_ID = [{"n": "CustomerID", "v": "C0000042", "t": "string"}]
# InteractClient's startSession (and BatchBuilder's): relyOnExistingSession true by default
SDK_START = {
    "action": "startSession",
    "ic": "web",
    "audienceID": AUDIENCE_ID,
    "audienceLevel": "Customer",
    "relyOnExistingSession": True,
    "debug": False,
}
GET_OFFERS = {"action": "getOffers", "ip": "web_home_hero", "numberRequested": 1}
# InteractClient.isSessionInvalid: msg.toLowerCase().includes(...) of each phrase
SDK_SESSION_PHRASES = ("invalid session id", "session id", "session expired", "session timeout")


def post(api: TestClient, body: dict[str, Any]) -> Any:
    answer = api.post(
        SERVLET, json=body, headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def sdk_sees_invalid_session(response: dict[str, Any]) -> bool:
    """InteractClient.isSessionInvalid, for one response."""
    return response["statusCode"] == 2 and any(
        m["msgLevel"] == 2
        and m["msgCode"] == 1
        and any(phrase in m["msg"].lower() for phrase in SDK_SESSION_PHRASES)
        for m in response["messages"]
    )


# -- 1. startSession without a session id -----------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        {"commands": [SDK_START]},  # InteractClient: no sessionId key
        {"sessionId": None, "commands": [SDK_START]},  # InteractServletClient: null
        {"sessionId": "", "commands": [SDK_START]},
        {"commands": [{**SDK_START, "sessionId": None}]},
    ],
    ids=["absent", "null", "empty", "null-in-command"],
)
def test_start_session_without_an_id_creates_one(api: TestClient, body: dict[str, Any]) -> None:
    (start,) = post(api, body)["responses"]
    assert start["statusCode"] == 0, start
    session_id = start["sessionId"]
    assert isinstance(session_id, str) and len(session_id) >= 16
    later = post(api, {"sessionId": session_id, "commands": [GET_OFFERS, {"action": "getProfile"}]})
    assert later["batchStatusCode"] == 0, later
    offers, profile = later["responses"]
    assert offers["sessionId"] == session_id and offers["offerLists"][0]["offers"]
    values = {p["n"]: p["v"] for p in profile["profile"]}
    assert values["customer_id"] == "C0000042"
    again = post(api, body)["responses"][0]["sessionId"]
    assert again != session_id  # a new session each time


def test_the_sdk_page_helper(api: TestClient, demo: Deployed) -> None:
    """InteractClient.getOffersForPage: startSession, postEvent page_view, getOffers, in one
    batch with no session id; it reads the session id from the first response."""
    body = {
        "commands": [
            SDK_START,
            {"action": "postEvent", "event": "page_view"},
            {"action": "getOffers", "ip": "web_home_hero", "numberRequested": 1},
        ]
    }
    reply = post(api, body)
    start, event, offers = reply["responses"]
    session_id = start["sessionId"]
    assert session_id and event["sessionId"] == offers["sessionId"] == session_id
    assert reply["batchStatusCode"] == 1  # page_view is not configured on web: a custom event
    assert [m["msgCode"] for m in event["messages"]] == [4]
    assert offers["statusCode"] == 0 and len(offers["offerLists"][0]["offers"]) == 1
    with demo.db.session() as s:
        stored = s.execute(select(EventRow.name, EventRow.session_id)).one()
    assert tuple(stored) == ("page_view", session_id)


def test_the_sdk_batch_builder_without_an_id(api: TestClient) -> None:
    """BatchBuilder.startSession(audience) marks its command with customSessionId: null and
    execute() then sends no session id."""
    start = {**SDK_START, "parameters": [{"n": "device", "v": "tablet", "t": "string"}]}
    commands = [
        {**start, "customSessionId": None},
        GET_OFFERS,
        {"action": "getProfile"},
        {"action": "endSession"},
    ]
    reply = post(api, {"commands": commands})
    assert reply["batchStatusCode"] == 0, reply
    ids = {r["sessionId"] for r in reply["responses"]}
    assert len(ids) == 1 and None not in ids
    profile = {p["n"]: p["v"] for p in reply["responses"][2]["profile"]}
    assert profile["device"] == "tablet"
    after = post(api, {"sessionId": ids.pop(), "commands": [GET_OFFERS]})
    assert after["responses"][0]["messages"][0]["msgCode"] == 1  # ended


# -- 2. an expired or unknown session, as clients recognise it ----------------------------
def test_an_unknown_session_is_recognised_and_recovered(api: TestClient) -> None:
    reply = post(api, {"sessionId": "gone-1", "commands": [GET_OFFERS]})
    (response,) = reply["responses"]
    assert sdk_sees_invalid_session(response), response
    message = response["messages"][0]
    assert "invalid session id 'gone-1'" in message["msg"].lower()
    assert "1800 s" in message["msg"] and "startSession" in message["detailMsg"]
    # the SDK's recovery: startSession (relyOnExistingSession false) + the same commands,
    # under the old session id
    recovery = {**SDK_START, "relyOnExistingSession": False}
    again = post(api, {"sessionId": "gone-1", "commands": [recovery, GET_OFFERS]})
    assert again["batchStatusCode"] == 0, again
    assert [r["sessionId"] for r in again["responses"]] == ["gone-1", "gone-1"]


def test_an_expired_session_is_recognised(demo: Deployed) -> None:
    with demo.client(session_idle_seconds=0.2) as api:
        assert post(api, {"sessionId": "short", "commands": [SDK_START]})["batchStatusCode"] == 0
        time.sleep(0.3)
        for command in (GET_OFFERS, {"action": "postEvent", "event": "Contact"}):
            (response,) = post(api, {"sessionId": "short", "commands": [command]})["responses"]
            assert sdk_sees_invalid_session(response), response
            assert "session expired" in response["messages"][0]["msg"].lower()


@pytest.mark.parametrize(
    "command",
    [
        GET_OFFERS,
        {"action": "getProfile"},
        {"action": "setAudience", "audienceID": AUDIENCE_ID},
        {"action": "setDebug", "debug": True},
        {"action": "postEvent", "event": "Contact"},
        {"action": "endSession"},
    ],
    ids=lambda c: str(c["action"]),
)
def test_every_command_names_a_missing_session_as_interact_does(
    api: TestClient, command: dict[str, Any]
) -> None:
    for body in ({"sessionId": "never", "commands": [command]}, {"commands": [command]}):
        (response,) = post(api, body)["responses"]
        assert sdk_sees_invalid_session(response), (body, response)


# -- 3. getProfile typed from the audience schema -----------------------------------------
ISO_DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z")
INTERACT_TYPE = {
    "string": "string",
    "int": "numeric",
    "float": "numeric",
    "bool": "string",
    "date": "datetime",
    "datetime": "datetime",
    "list[string]": "string",
}


def test_get_profile_types_each_field_from_the_schema(api: TestClient) -> None:
    from overture.catalog import load_catalog
    from overture.demo import CATALOG_PATH

    schema = {k: t.value for k, t in load_catalog(CATALOG_PATH).audiences[0].fields.items()}
    params = [
        {"n": "device", "v": "mobile", "t": "string"},
        {"n": "visit_count", "v": "3", "t": "numeric"},
    ]
    start = {**SDK_START, "parameters": params}
    reply = post(api, {"sessionId": "typed", "commands": [start, {"action": "getProfile"}]})
    profile = {p["n"]: p for p in reply["responses"][1]["profile"]}
    assert set(schema) <= set(profile)
    for name, type_name in schema.items():
        pair = profile[name]
        assert set(pair) == {"n", "v", "t"}
        assert pair["t"] == INTERACT_TYPE[type_name], (name, pair)
        value = pair["v"]
        if value is None:
            continue
        if type_name == "bool":
            assert value in ("true", "false"), pair
        elif type_name in ("date", "datetime"):
            assert ISO_DATETIME.fullmatch(value), pair
        elif type_name == "int":
            assert isinstance(value, int) and not isinstance(value, bool), pair
        elif type_name == "float":
            assert isinstance(value, (int, float)) and not isinstance(value, bool), pair
        else:
            assert isinstance(value, str), pair
    assert profile["customer_since"]["v"].endswith("T00:00:00Z")  # a date: its midnight
    assert profile["device"] == {"n": "device", "v": "mobile", "t": "string"}
    assert profile["visit_count"] == {"n": "visit_count", "v": 3, "t": "numeric"}


# -- 4. UACIOfferTrackingCode matches ignoring case ---------------------------------------
@pytest.mark.parametrize("name", ["uacioffertrackingcode", "UACIOFFERTRACKINGCODE"])
def test_the_tracking_code_parameter_matches_ignoring_case(
    api: TestClient, demo: Deployed, name: str
) -> None:
    reply = post(api, {"sessionId": "t", "commands": [SDK_START, GET_OFFERS]})
    offer = reply["responses"][1]["offerLists"][0]["offers"][0]
    event = {
        "action": "postEvent",
        "event": "accept",
        "parameters": [{"n": name, "v": offer["treatmentCode"], "t": "string"}],
    }
    answer = post(api, {"sessionId": "t", "commands": [event]})
    assert answer["batchStatusCode"] == 0, answer
    with demo.db.session() as s:
        row = s.execute(select(EventRow.kind, EventRow.offer_code, EventRow.attributes)).one()
    assert (row.kind, row.offer_code) == ("accepted", offer["code"][0])
    assert row.attributes == {}  # the tracking code is not an attribute of the event


# -- 5. event names with spaces and hyphens -----------------------------------------------
@pytest.mark.parametrize("name", ["Add To Cart", "page-view", "Step 2 - confirm"])
def test_event_names_may_hold_spaces_and_hyphens(
    api: TestClient, demo: Deployed, name: str
) -> None:
    event = {"action": "postEvent", "event": name}
    reply = post(api, {"sessionId": "e", "commands": [SDK_START, event]})
    _start, response = reply["responses"]
    assert response["statusCode"] == 1, response  # stored, as a custom event
    assert [m["msgCode"] for m in response["messages"]] == [4]
    assert "not configured" in response["messages"][0]["msg"]
    with demo.db.session() as s:
        assert s.execute(select(EventRow.name)).scalar_one() == name


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "needs an event name"),
        ("   ", "needs an event name"),
        ("Add\tTo Cart", "control character"),
        ("page\nview", "control character"),
        (" page_view", "start with a letter"),
        ("page_view ", "end with a space"),
        ("2nd_visit", "start with a letter"),
        ("view*", "letters, digits"),
        ("x" * 65, "64 characters"),
    ],
)
def test_what_is_still_no_event_name_is_refused_clearly(
    api: TestClient, name: str, why: str
) -> None:
    event = {"action": "postEvent", "event": name}
    reply = post(api, {"sessionId": "e", "commands": [SDK_START, event]})
    _start, response = reply["responses"]
    assert response["statusCode"] == 2, response
    (message,) = response["messages"]
    assert message["msgCode"] in (4, 11)
    assert why in message["msg"] + " " + message["detailMsg"], message


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_the_native_api_takes_the_same_event_names(api: TestClient) -> None:
    ok = api.post("/v1/events", json={"name": "Add To Cart", "profile_id": "C0000042"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["results"][0]["status"] == "stored"
    refused = api.post("/v1/events", json={"name": "Add\tTo Cart", "profile_id": "C0000042"})
    assert refused.status_code == 422, refused.text


def test_a_channel_may_configure_event_names_with_spaces_and_hyphens() -> None:
    events = ChannelEvents(accepted=["Add To Cart"], presented=["page-view"])
    assert events.kind_of("add to cart") == "accepted"
    assert events.kind_of("PAGE-VIEW") == "presented"
    with pytest.raises(ValueError, match="event name"):
        ChannelEvents(accepted=["Add\tTo Cart"])
