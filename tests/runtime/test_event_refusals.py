"""Events the runtime refuses although they are well-formed (docs/runtime.md, "What the
runtime refuses"): one dated ahead of the node's clock by more than the allowed skew, one
naming an offer no deployment of the environment has."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import func, select
from starlette.testclient import TestClient

from overture.design import deployments, transfer
from overture.store.history import EventRow
from tests.deployed import Deployed
from tests.design.helpers import ADMIN, DEPLOYER, approve_all
from tests.runtime.catalogs import SHOP
from tests.runtime.test_policies import banner
from tests.runtime.test_servlet import SERVLET, START


def _stored(deployed: Deployed) -> int:
    with deployed.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(EventRow)) or 0)


def _at(delta: dt.timedelta) -> str:
    return (dt.datetime.now(dt.UTC) + delta).isoformat()


# -- the future ----------------------------------------------------------------------------
def test_an_event_in_the_future_is_refused_saying_by_how_much(
    shop: Deployed, shop_api: TestClient
) -> None:
    before = _stored(shop)
    event = {"name": "view", "offer": "BIG", "profile_id": "v1", "at": "9999-12-31T00:00:00Z"}
    answer = shop_api.post("/v1/events", json=event)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    detail = problem["detail"]
    assert detail.startswith("the event is in the future: `at` 9999-12-31T00:00:00Z is "), detail
    assert re.search(r"is [\d,]+ days ahead of the node's clock \(\d{4}-\d\d-\d\dT", detail)
    assert "at most 5 min ahead" in detail, detail
    assert problem["rejected"] == 1 and problem["results"][0]["status"] == "rejected"
    assert _stored(shop) == before


def test_a_refused_future_event_does_not_count_against_caps(shop_api: TestClient) -> None:
    """Two presentations of BIG (a deal: at most 2 a week) dated in 9999 counted against
    its cap until then: the visitor never saw it again."""
    future = {"name": "view", "offer": "BIG", "profile_id": "v1", "at": "9999-12-31T00:00:00Z"}
    answer = shop_api.post("/v1/events", json={"events": [future, future]})
    assert answer.status_code == 422, answer.text
    assert banner(shop_api)["offer"] == "BIG"


def test_in_a_batch_the_future_event_is_rejected_and_the_others_stored(
    shop_api: TestClient,
) -> None:
    events = [
        {"name": "view", "offer": "BIG", "profile_id": "v1", "at": _at(dt.timedelta(hours=3))},
        {"name": "view", "offer": "BIG", "profile_id": "v1"},
    ]
    answer = shop_api.post("/v1/events", json={"events": events})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["stored"], result["rejected"]) == (1, 1)
    refused = result["results"][0]
    assert refused["status"] == "rejected"
    assert " is 3 h ahead of the node's clock " in refused["error"], refused


def test_a_clock_a_little_ahead_is_taken(shop_api: TestClient) -> None:
    """Clocks drift: an event up to 5 minutes ahead (the default) is stored as dated."""
    for ahead in (dt.timedelta(minutes=4), dt.timedelta(seconds=-30), dt.timedelta(days=-400)):
        event = {"name": "visit", "profile_id": "v1", "at": _at(ahead)}
        answer = shop_api.post("/v1/events", json=event)
        assert answer.status_code == 200 and answer.json()["stored"] == 1, (ahead, answer.text)


def test_the_skew_allowed_is_a_setting(shop: Deployed) -> None:
    def post(client: TestClient, ahead: dt.timedelta) -> Any:
        return client.post(
            "/v1/events", json={"name": "visit", "profile_id": "v1", "at": _at(ahead)}
        )

    with shop.client(event_skew_seconds=0) as strict:
        answer = post(strict, dt.timedelta(seconds=10))
        assert answer.status_code == 422, answer.text
        assert "an event may be at most 0 s ahead" in answer.json()["detail"]
    with shop.client(event_skew_seconds=3600) as lenient:
        assert post(lenient, dt.timedelta(minutes=50)).status_code == 200
        answer = post(lenient, dt.timedelta(minutes=70))
        assert answer.status_code == 422, answer.text
        assert "is 70 min ahead" in answer.json()["detail"], answer.text
        assert "at most 60 min ahead" in answer.json()["detail"], answer.text


def test_a_time_with_an_offset_is_compared_in_utc(shop_api: TestClient) -> None:
    """10:00+14:00 is 20:00 UTC the day before: local times ahead of UTC are not the future."""
    now = dt.datetime.now(dt.UTC)
    local = now.astimezone(dt.timezone(dt.timedelta(hours=14))).replace(tzinfo=None)
    event = {"name": "visit", "profile_id": "v1", "at": local.isoformat() + "+14:00"}
    assert shop_api.post("/v1/events", json=event).status_code == 200
    event["at"] = local.isoformat() + "Z"  # the same wall clock said to be UTC: 14 h ahead
    answer = shop_api.post("/v1/events", json=event)
    assert answer.status_code == 422 and " is 14 h ahead " in answer.json()["detail"]


def test_the_servlet_dates_its_events_when_received(demo: Deployed, api: TestClient) -> None:
    """Interact's postEvent says no time: the servlet's events are dated when received, so
    never ahead (a parameter named like a time is one of the event's attributes)."""
    session = "dated-by-the-node"
    commands = [
        START,
        {
            "action": "postEvent",
            "event": "Visit",
            "parameters": [{"n": "at", "v": "9999-12-31T00:00:00Z", "t": "string"}],
        },
    ]
    answer = api.post(SERVLET, json={"sessionId": session, "commands": commands})
    assert answer.json()["batchStatusCode"] < 2, answer.text
    with demo.db.session() as s:
        (row,) = s.scalars(select(EventRow).where(EventRow.session_id == session))
    assert abs(row.at - dt.datetime.now(dt.UTC).replace(tzinfo=None)) < dt.timedelta(minutes=1)
    assert row.attributes == {"at": "9999-12-31T00:00:00Z"}


# -- unknown offers ------------------------------------------------------------------------
def test_an_event_for_an_unknown_offer_is_refused_saying_which(
    shop: Deployed, shop_api: TestClient
) -> None:
    """It was stored, as a presentation of an offer nobody has, counted for the profile."""
    before = _stored(shop)
    answer = shop_api.post("/v1/events", json={"name": "view", "offer": "NOPE", "profile_id": "v1"})
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    detail = answer.json()["detail"]
    assert detail.startswith(
        "unknown offer 'NOPE': no deployment of environment 'staging' has it; name an offer"
    ), detail
    answer = shop_api.post("/v1/events", json={"name": "click", "offer": "big", "profile_id": "v1"})
    assert answer.status_code == 422, answer.text
    assert "(codes are case-sensitive: did you mean 'BIG'?)" in answer.json()["detail"]
    assert _stored(shop) == before


def test_in_a_batch_the_unknown_offer_is_rejected_and_the_others_stored(
    shop_api: TestClient,
) -> None:
    events = [
        {"name": "view", "offer": "BIG", "profile_id": "v1"},
        {"name": "view", "offer": "GONE", "profile_id": "v1"},
        {"name": "visit", "profile_id": "v1"},  # a custom event names no offer: taken
    ]
    result = shop_api.post("/v1/events", json={"events": events}).json()
    assert (result["stored"], result["rejected"]) == (2, 1), result
    assert result["results"][1]["error"].startswith("unknown offer 'GONE'"), result


# The shop's catalog with RARE retired and NEW added
NEXT = SHOP.replace(
    """  - {code: RARE, name: Rare deal, category: deals, value: 20, weights: [{value: 2}],
     placements: [banner, sidebar], content: {text: "Rare"}}
""",
    """  - {code: NEW, name: New, category: info, placements: [sidebar], content: {text: "New"}}
""",
).replace("  - {name: rare_stock, kind: inventory, offers: [RARE], limit: 5, per: day}\n", "")


def test_an_offer_of_an_earlier_deployment_still_takes_events(shop: Deployed) -> None:
    """A page shown, or an email sent, before a deployment that retired its offer reports
    its events after: they are stored. A code no deployment of the environment had is not."""
    assert "RARE" not in NEXT
    with shop.db.session() as s:
        transfer.import_catalog(s, ADMIN, {"shop.yaml": NEXT})
        approve_all(s)
        deployments.deploy(s, DEPLOYER, "staging")
    late = {"name": "click", "offer": "RARE", "profile_id": "v1"}
    with shop.client() as client:
        ask = {"placements": [{"placement": "sidebar"}], "record": False}
        decided = client.post("/v1/decisions", json=ask).json()
        assert decided["deployment"] == 2
        assert {o["offer"] for o in decided["placements"][0]["offers"]} == {"BIG", "NEW"}
        answer = client.post("/v1/events", json=late)
        assert answer.status_code == 200 and answer.json()["stored"] == 1, answer.text
        answer = client.post("/v1/events", json={**late, "offer": "NEVER"})
        assert answer.status_code == 422, answer.text
        assert "unknown offer 'NEVER'" in answer.json()["detail"]
    with shop.db.session() as s:
        deployments.rollback(s, DEPLOYER, "staging", to=1)
    with shop.client() as client:  # deployment 3, deployment 1 again: NEW was retired
        answer = client.post("/v1/events", json={**late, "offer": "NEW"})
        assert answer.status_code == 200 and answer.json()["stored"] == 1, answer.text
        answer = client.post("/v1/events", json={**late, "offer": "NEVER"})
        assert answer.status_code == 422, answer.text
