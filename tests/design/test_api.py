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


@pytest.mark.parametrize("depth", [100, 1500])
def test_a_template_nested_too_deeply_is_a_validation_error_not_a_500(
    demo: Api, depth: int
) -> None:
    offer = demo.call("GET", "/v1/design/offers/CC-GOLD").json()
    title = "{{ profile.first_name" + " | upper" * depth + " }}"  # 1,500: RecursionError
    spec = offer["spec"] | {"content": offer["spec"]["content"] | {"title": title}}
    response = demo.call(
        "PUT", "/v1/design/offers/CC-GOLD", json=spec, headers={"If-Match": f'"{offer["version"]}"'}
    )
    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM
    errors = response.json()["errors"]
    (error,) = errors
    assert error["where"] == "offers[CC-GOLD].content.title:1:1"
    assert error["message"].startswith("template nested too deeply: ")


@pytest.mark.slow
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


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/design/auth/login", {"name": "ro\x00ot", "password": "x"}),
        ("GET", "/v1/design/offers/A%00B", None),
        ("GET", "/v1/design/operators/a%00", None),
        ("GET", "/v1/design/offers?q=a%00", None),
        ("GET", "/v1/design/audit?operator=a%00", None),
        ("GET", "/v1/design/environments/a%00/plan", None),
        ("POST", "/v1/design/api-keys", {"environment": "staging", "name": "k\x00"}),
        ("POST", "/v1/design/environments/staging/deployments", {"comment": "a\x00"}),
        ("DELETE", "/v1/design/api-keys/1099511627776", None),
        ("GET", "/v1/design/environments/staging/deployments/1099511627776", None),
        ("POST", "/v1/design/environments/staging/rollback", {"to": 1099511627776}),
        ("GET", "/v1/design/offers?offset=1099511627776", None),
    ],
)
def test_what_a_database_cannot_store_is_a_clear_4xx(
    api: Api, method: str, path: str, body: object
) -> None:
    """NUL in text and numbers past 32 bits: SQLite takes them, PostgreSQL refuses them;
    either way the answer is a problem saying what is wrong, never a 500."""
    response = api.call(method, path, json=body) if body else api.call(method, path)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert (
        "NUL" in str(problem)
        or "less than or equal" in str(problem)
        or (path.startswith("/v1/design/auth/login") and response.status_code in (401, 422))
    ), problem


def test_lists_refuse_questions_they_cannot_answer(demo: Api) -> None:
    wrong_field = demo.call("GET", "/v1/design/placements?filter=chanel:web")
    assert wrong_field.status_code == 400 and "no such field" in wrong_field.json()["detail"]
    by_channel = demo.call("GET", "/v1/design/placements?filter=channel:web").json()
    assert by_channel["total"] == 3  # the field exists: a real filter
    policies = demo.call("GET", "/v1/design/policies?filter=kind:capping").json()
    assert policies["total"] >= 1 and all(p["spec"]["kind"] == "capping" for p in policies["items"])
    status = demo.call("GET", "/v1/design/offers?status=aproved")
    assert status.status_code == 400 and "statuses: draft, pending" in status.json()["detail"]
    # q is text to find, not a LIKE pattern: '_' matches only an underscore
    assert demo.call("GET", "/v1/design/offers?q=_").json()["total"] == 0
    assert demo.call("GET", "/v1/design/placements?q=_home").json()["total"] == 2
    assert demo.call("GET", "/v1/design/offers?q=%25").json()["total"] == 0


def test_if_match_star_changes_whatever_version_is_current(demo: Api) -> None:
    channel = demo.call("GET", "/v1/design/channels/web")
    body = {**channel.json()["spec"], "description": "changed without reading first"}
    changed = demo.call("PUT", "/v1/design/channels/web", json=body, headers={"If-Match": "*"})
    assert changed.status_code == 200 and changed.headers["etag"] != channel.headers["etag"]
    stale = demo.call(
        "PUT", "/v1/design/channels/web", json=body, headers={"If-Match": channel.headers["etag"]}
    )
    assert stale.status_code == 409


def test_a_design_application_without_the_batch_module_says_it_cannot_simulate(
    api: Api, database: Database
) -> None:
    """Simulations are the batch module's, which overture.server hands to the design API;
    the design application alone answers 501, saying where simulations run."""
    from fastapi.testclient import TestClient

    from overture.design.app import create_app

    alone = TestClient(create_app(database), raise_server_exceptions=False)
    body = {"placement": "web_home_hero"}
    path = "/v1/design/environments/staging/simulations"
    answer = alone.post(path, json=body, headers=api.as_("delivery_manager"))
    assert answer.status_code == 501 and answer.headers["content-type"] == PROBLEM
    assert "overture serve" in answer.json()["detail"]
    assert alone.post(path, json=body, headers=api.as_("viewer")).status_code == 403
