"""The design API over HTTP: problems, ETags, workflow, deployments, import/export."""

from __future__ import annotations

import pytest

from overture.store import Database
from tests.design.api import Api, make_api
from tests.design.helpers import demo_files

PROBLEM = "application/problem+json"


@pytest.fixture
def api(database: Database) -> Api:
    return make_api(database)


@pytest.fixture
def demo(api: Api) -> Api:
    response = api.call("POST", "/v1/design/catalog/import", json={"files": demo_files()})
    assert response.status_code == 200, response.text
    return api


def test_login_me_logout(api: Api) -> None:
    bad = api.client.post("/v1/design/auth/login", json={"name": "viewer", "password": "nope"})
    assert bad.status_code == 401 and bad.headers["content-type"] == PROBLEM
    assert bad.json()["detail"] == "wrong name or password"
    me = api.call("GET", "/v1/design/auth/me", "viewer").json()
    assert me["name"] == "viewer" and me["roles"] == ["viewer"]
    assert api.call("POST", "/v1/design/auth/logout", "viewer").status_code == 204
    after = api.call("GET", "/v1/design/auth/me", "viewer")
    assert after.status_code == 401 and "log in again" in after.json()["detail"]
    assert api.client.get("/v1/design/offers").status_code == 401


def test_problems_for_bad_input(api: Api) -> None:
    unknown = api.call("POST", "/v1/design/channels", json={"name": "web", "descripton": "x"})
    assert unknown.status_code == 422 and unknown.headers["content-type"] == PROBLEM
    (error,) = unknown.json()["errors"]
    assert error["where"] == "body.descripton" and error["message"] == "unknown field 'descripton'"
    assert error["hint"] == "did you mean 'description'?"
    huge = api.call(
        "POST",
        "/v1/design/channels",
        content=b"x" * (2 << 20),
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413 and huge.json()["title"] == "Payload too large"
    assert api.call("GET", "/v1/design/channels/nope").status_code == 404
    assert api.call("DELETE", "/v1/design/offers").status_code == 405


def test_etags_and_optimistic_concurrency(demo: Api) -> None:
    got = demo.call("GET", "/v1/design/zones/home")
    assert got.headers["etag"] == '"1"'
    body = {"name": "home", "description": "Landing pages"}
    missing = demo.call("PUT", "/v1/design/zones/home", json=body)
    assert missing.status_code == 428 and missing.json()["current_version"] == 1
    ok = demo.call("PUT", "/v1/design/zones/home", json=body, headers={"If-Match": '"1"'})
    assert ok.status_code == 200 and ok.headers["etag"] == '"2"'
    stale = demo.call("PUT", "/v1/design/zones/home", json=body, headers={"If-Match": '"1"'})
    assert stale.status_code == 409 and stale.json()["current_version"] == 2
    assert stale.headers["etag"] == '"2"'


def test_validation_errors_list_every_problem_with_locations(demo: Api) -> None:
    offer = demo.call("GET", "/v1/design/offers/CC-GOLD").json()
    spec = offer["spec"] | {"eligibility": "incom > 3 and credit_scor > 1", "category": "cardz"}
    response = demo.call(
        "PUT", "/v1/design/offers/CC-GOLD", json=spec, headers={"If-Match": f'"{offer["version"]}"'}
    )
    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM
    errors = {(e["where"], e["message"], e["hint"]) for e in response.json()["errors"]}
    assert errors == {
        ("offers[CC-GOLD].category", "unknown category 'cardz'", "did you mean 'cards'?"),
        (
            "offers[CC-GOLD].eligibility:1:1",
            "unknown profile field 'incom'",
            "did you mean 'income'?",
        ),
        (
            "offers[CC-GOLD].eligibility:1:15",
            "unknown profile field 'credit_scor'",
            "did you mean 'credit_score'?",
        ),
    }


def test_workflow_and_deployments_over_http(demo: Api) -> None:
    def version(code: str) -> dict[str, str]:
        return {"If-Match": demo.call("GET", f"/v1/design/offers/{code}").headers["etag"]}

    page = demo.call("GET", "/v1/design/offers", params={"status": "draft", "limit": 100}).json()
    assert page["total"] == 36
    for item in page["items"]:
        code = item["key"]
        assert (
            demo.call(
                "POST", f"/v1/design/offers/{code}/submit", "offer_manager", headers=version(code)
            ).status_code
            == 200
        )
        approved = demo.call(
            "POST",
            f"/v1/design/offers/{code}/approve",
            "approver",
            headers=version(code),
            json={"comment": "ok"},
        )
        assert approved.json()["status"] == "approved", approved.text
    plan = demo.call("GET", "/v1/design/environments/staging/plan", "deployer").json()
    assert len(plan["changes"]["offers"]["added"]) == 36 and plan["errors"] == []
    early = demo.call(
        "POST",
        "/v1/design/environments/production/deployments",
        "deployer",
        json={"comment": "too soon"},
    )
    assert early.status_code == 409 and early.json()["requires"] == "staging"
    staged = demo.call(
        "POST", "/v1/design/environments/staging/deployments", "deployer", json={"comment": "first"}
    )
    assert staged.status_code == 201 and staged.json()["number"] == 1
    live = demo.call(
        "POST", "/v1/design/environments/production/deployments", "deployer", json={"comment": "go"}
    )
    assert live.status_code == 201
    detail = demo.call("GET", "/v1/design/environments/production/deployments/1").json()
    assert len(detail["catalog"]["offers"]) == 36
    back = demo.call(
        "POST",
        "/v1/design/environments/production/rollback",
        "deployer",
        json={"to": 1, "comment": "same again"},
    )
    assert back.json()["number"] == 2 and back.json()["rollback_of"] == 1
    history = demo.call("GET", "/v1/design/environments/production/deployments").json()
    assert [d["number"] for d in history["items"]] == [2, 1]
    envs = {e["name"]: e["current"] for e in demo.call("GET", "/v1/design/environments").json()}
    assert envs == {"staging": 1, "production": 2}


def test_export_round_trips_through_the_api(demo: Api) -> None:
    exported = demo.call("GET", "/v1/design/catalog/export").json()["files"]
    again = demo.call("POST", "/v1/design/catalog/import", json={"files": exported}).json()
    assert again["settings_changed"] is False
    assert all(not any(v.values()) for v in again["sections"].values())


def test_api_keys_and_operators(demo: Api) -> None:
    created = demo.call(
        "POST", "/v1/design/api-keys", json={"environment": "staging", "name": "web"}
    ).json()
    assert created["key"].startswith("ovk_") and created["environment"] == "staging"
    listed = demo.call("GET", "/v1/design/api-keys").json()
    assert "key" not in listed[0]
    assert demo.call("DELETE", f"/v1/design/api-keys/{created['id']}").status_code == 204
    new = demo.call(
        "POST",
        "/v1/design/operators",
        json={"name": "zoe", "password": "a long passphrase", "roles": ["boss"]},
    )
    assert new.status_code == 400 and "unknown role 'boss'" in new.json()["detail"]


def test_audit_log_through_the_api(demo: Api) -> None:
    entries = demo.call("GET", "/v1/design/audit", params={"action": "catalog.import"}).json()
    assert entries["total"] == 1 and entries["items"][0]["operator"] == "administrator"
