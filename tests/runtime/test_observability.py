"""/metrics, /healthz, /readyz and the runtime's OpenAPI description."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from overture.store import Database
from tests.deployed import Deployed


def test_metrics_count_decisions_events_errors_and_the_plan(shop_api: TestClient) -> None:
    shop_api.post("/v1/decisions", json={"placements": [{"placement": "banner"}]})
    shop_api.post("/v1/decisions", json={"placements": [{"placement": "nowhere"}]})
    shop_api.post("/v1/events", json={"name": "view", "offer": "BIG", "profile_id": "v"})
    text = shop_api.get("/metrics").text
    assert 'overture_decisions_total{environment="staging"} 1.0' in text
    assert 'overture_events_total{environment="staging",kind="presented"} 1.0' in text
    assert 'overture_errors_total{endpoint="decisions",status="422"} 1.0' in text
    assert 'overture_deployment{environment="staging"} 1.0' in text
    assert 'overture_request_seconds_count{endpoint="decisions"} 2.0' in text
    assert 'overture_request_seconds_bucket{endpoint="decisions",le="0.01"}' in text


def test_health_and_readiness(database: Database) -> None:
    empty = Deployed(database, "")
    with empty.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")  # nothing deployed: nothing to wait for
        assert ready.status_code == 200
        assert ready.json()["environments"]["staging"] == {
            "deployment": None,
            "latest": None,
            "error": None,
        }


def test_readiness_reports_the_deployment_serving(shop: Deployed) -> None:
    with shop.client() as client:
        body = client.get("/readyz").json()
        assert body["ready"] is True
        assert body["environments"]["staging"]["deployment"] == 1


def test_readiness_reports_each_dependency(shop: Deployed) -> None:
    """Each dependency and its state (tests/runtime/test_failures.py takes them down)."""
    with shop.client() as client:
        answer = client.get("/readyz")
    body = answer.json()
    assert (answer.status_code, body["status"]) == (200, "ready")
    database = body["dependencies"]["database"]
    assert database["state"] == "up" and database["since"] and database["checked_at"]
    assert body["dependencies"]["redis"] == {"state": "not used"}


def test_an_unexpected_error_is_told_to_people_without_its_name(
    shop_api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure nothing expected is a 500 whose detail says what to do, never the
    exception's name; a dependency that stopped answering is a 503 with Retry-After."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    node = shop_api.app.state.node  # type: ignore[attr-defined]
    ask = {"placements": [{"placement": "banner"}]}

    async def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("boom")

    monkeypatch.setattr(node.runtime, "decide", broken)
    answer = shop_api.post("/v1/decisions", json=ask)
    assert answer.status_code == 500
    assert "KeyError" not in answer.text and "boom" not in answer.text
    assert "retry" in answer.json()["detail"]

    async def unreachable(*args: object, **kwargs: object) -> None:
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    monkeypatch.setattr(node.runtime, "decide", unreachable)
    answer = shop_api.post("/v1/decisions", json=ask)
    assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
    assert "Error" not in answer.json()["detail"]


def test_the_openapi_description_covers_every_runtime_route(shop_api: TestClient) -> None:
    spec = shop_api.get("/runtime/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert set(spec["paths"]) == {
        "/v1/decisions",
        "/v1/events",
        "/v1/sessions",
        "/v1/sessions/{id}",
        "/v1/sessions/{id}/audience",
        "/v1/profiles/{id}/history",
    }
    decision = spec["components"]["schemas"]["DecisionIn"]
    assert decision["required"] == ["placements"]
    assert decision["additionalProperties"] is False
