"""Events drive presentation policies: capping, suppression and inventory, read from the
history the runtime records (see overture.history.ledger for what counts)."""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import func, select
from starlette.testclient import TestClient

from overture.store.history import EventRow
from tests.deployed import Deployed


def banner(api: TestClient, visitor: str | None = "v1", **extra: object) -> dict[str, object]:
    body: dict[str, object] = {"placements": [{"placement": "banner"}], **extra}
    if visitor is not None:
        body["profile_id"] = visitor
    answer = api.post("/v1/decisions", json=body)
    assert answer.status_code == 200, answer.text
    offers = answer.json()["placements"][0]["offers"]
    return offers[0] if offers else {}


def test_capping_counts_propositions_per_profile(shop_api: TestClient) -> None:
    seen = [banner(shop_api)["offer"] for _ in range(6)]
    # BIG twice, then RARE twice (deals: at most 2 a week each), then the fallback
    assert seen == ["BIG", "BIG", "RARE", "RARE", "HELLO", "HELLO"]
    assert banner(shop_api, "v2")["offer"] == "BIG"  # another visitor has their own count


def test_a_presented_event_confirms_and_does_not_count_twice(shop_api: TestClient) -> None:
    first = banner(shop_api)
    result = shop_api.post(
        "/v1/events", json={"name": "view", "tracking_code": first["tracking_code"]}
    ).json()
    assert result["results"][0] | {"event_id": ""} == {
        "event_id": "",
        "status": "stored",
        "kind": "presented",
    }
    assert banner(shop_api)["offer"] == "BIG"  # the view did not spend the second unit
    assert banner(shop_api)["offer"] == "RARE"


def test_an_untracked_presentation_counts(shop_api: TestClient) -> None:
    events = [{"name": "view", "offer": "BIG", "profile_id": "v1"} for _ in range(2)]
    assert shop_api.post("/v1/events", json={"events": events}).json()["stored"] == 2
    assert banner(shop_api)["offer"] == "RARE"


def test_suppression_after_a_rejection(shop_api: TestClient) -> None:
    first = banner(shop_api)
    shop_api.post("/v1/events", json={"name": "close", "tracking_code": first["tracking_code"]})
    assert banner(shop_api)["offer"] == "RARE"
    assert banner(shop_api, "v2")["offer"] == "BIG"


def test_inventory_is_spent_over_every_profile(shop_api: TestClient) -> None:
    # BIG goes twice to each visitor first; RARE then goes to the first few only
    rare = 0
    for i in range(6):
        visitor = f"visitor{i}"
        offers = [banner(shop_api, visitor)["offer"] for _ in range(3)]
        rare += offers.count("RARE")
    assert rare == 5  # rare_stock: 5 a day
    sidebar = shop_api.post(
        "/v1/decisions", json={"profile_id": "late", "placements": [{"placement": "sidebar"}]}
    ).json()
    assert [o["offer"] for o in sidebar["placements"][0]["offers"]] == ["BIG"]


def test_events_are_idempotent_and_bad_ones_are_told(shop_api: TestClient, shop: Deployed) -> None:
    first = banner(shop_api)
    event = {"name": "click", "tracking_code": first["tracking_code"], "event_id": "e-1"}
    batch = {
        "events": [
            event,
            event,
            {"name": "click", "tracking_code": "nope"},
            {"name": "click"},
            {"name": "click", "tracking_code": first["tracking_code"], "offer": "RARE"},
        ]
    }
    result = shop_api.post("/v1/events", json=batch).json()
    assert [r["status"] for r in result["results"]] == [
        "stored",
        "duplicate",
        "rejected",
        "rejected",
        "rejected",
    ]
    errors = [r.get("error", "") for r in result["results"]]
    assert "unknown tracking code 'nope'" in errors[2]
    assert "give tracking_code" in errors[3]
    assert "offer 'RARE' does not match" in errors[4]
    again = shop_api.post("/v1/events", json=event).json()
    assert again["duplicates"] == 1
    with shop.db.session() as s:
        rows = s.execute(select(EventRow.kind, EventRow.offer_code, EventRow.profile_id)).all()
    assert rows == [("accepted", "BIG", "v1")]
    only_bad = shop_api.post("/v1/events", json={"name": "click", "tracking_code": "nope"})
    assert only_bad.status_code == 422 and "unknown tracking code" in only_bad.json()["detail"]
    bad_name = shop_api.post("/v1/events", json={"name": "1click", "offer": "BIG"})
    assert bad_name.status_code == 422 and "$.name" in bad_name.json()["detail"]


def test_event_names_follow_the_channel_configuration(shop_api: TestClient, shop: Deployed) -> None:
    first = banner(shop_api)
    for name in ("VIEW", "Click", "close", "share"):
        shop_api.post("/v1/events", json={"name": name, "tracking_code": first["tracking_code"]})
    with shop.db.session() as s:
        kinds = s.execute(select(EventRow.name, EventRow.kind).order_by(EventRow.id)).all()
        counted = s.scalar(select(func.count()).where(EventRow.counted.is_(True)))
    assert kinds == [
        ("VIEW", "presented"),
        ("Click", "accepted"),
        ("close", "rejected"),
        ("share", "custom"),
    ]
    assert counted == 2  # the responses; the tracked view confirmed its proposition


def test_an_event_may_say_when_it_happened(shop_api: TestClient) -> None:
    long_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=8)).isoformat()
    events = [{"name": "view", "offer": "BIG", "profile_id": "v1", "at": long_ago}] * 1
    events += [
        {"name": "view", "offer": "BIG", "profile_id": "v1", "at": long_ago, "event_id": "old-2"}
    ]
    shop_api.post("/v1/events", json={"events": events})
    assert banner(shop_api)["offer"] == "BIG"  # outside the 7-day window


def test_profile_history_for_support_desks(shop_api: TestClient) -> None:
    first = banner(shop_api)
    shop_api.post("/v1/events", json={"name": "click", "tracking_code": first["tracking_code"]})
    banner(shop_api)
    shop_api.post("/v1/events", json={"name": "view", "offer": "RARE", "profile_id": "v1"})
    history = shop_api.get("/v1/profiles/v1/history").json()
    assert [p["offer"] for p in history["propositions"]] == ["BIG", "BIG"]
    assert history["propositions"][1]["events"][0]["kind"] == "accepted"
    assert [e["offer"] for e in history["other_events"]] == ["RARE"]
    assert (
        shop_api.get("/v1/profiles/v1/history?limit=1").json()["propositions"][0]["tracking_code"]
        != first["tracking_code"]
    )
    assert shop_api.get("/v1/profiles/v1/history?limit=0").status_code == 400
    assert shop_api.get("/v1/profiles/v1/history?lim=3").status_code == 400


def test_a_deployment_that_widens_a_window_counts_what_the_cache_had_left_out(
    shop: Deployed,
) -> None:
    """A node keeps profile histories across deployments whose policies look back as far;
    one that looks further back is counted from a fresh read: a cache holding the 7-day
    window would miss the propositions of ten days ago."""
    from tests.deployed import deploy
    from tests.runtime.catalogs import SHOP

    ten_days_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=10)).isoformat()
    with shop.client(accept_decision_times=True) as past:  # another node, ten days ago
        assert [banner(past, "w", at=ten_days_ago)["offer"] for _ in range(2)] == ["BIG"] * 2
    with shop.client() as api:
        assert banner(api, "w")["offer"] == "BIG"  # "w" read and cached with 7 days
        before = api.get("/readyz").json()["environments"]["staging"]["deployment"]
        deploy(shop.db, {"shop.yaml": SHOP.replace("window: 7d", "window: 30d")})
        for _ in range(100):
            if api.get("/readyz").json()["environments"]["staging"]["deployment"] > before:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the node did not swap in the new deployment")
        # 30 days: the two of ten days ago and today's one count, BIG is capped
        assert banner(api, "w")["offer"] == "RARE"
