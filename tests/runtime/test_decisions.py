"""POST /v1/decisions: what touchpoints get, and what they are told when they ask wrong."""

from __future__ import annotations

import datetime as dt
import gc

import msgspec
from sqlalchemy import func, select
from starlette.testclient import TestClient

from overture.catalog import load_catalog
from overture.demo import CATALOG_PATH
from overture.demo import profiles as demo_profiles
from overture.engine import DecisionRequest, build_plan
from overture.runtime.schemas import DecisionOut
from overture.store.history import PropositionRow
from tests.demo import DEMO_AS_OF
from tests.deployed import DEMO_PROFILES, Deployed

HERO_AND_SIDEBAR = [{"placement": "web_home_hero"}, {"placement": "web_account_sidebar"}]


def test_a_profile_id_is_looked_up_and_decided_as_the_engine_decides(api: TestClient) -> None:
    plan = build_plan(load_catalog(CATALOG_PATH))
    for row in range(0, DEMO_PROFILES, 37):
        customer = demo_profiles.customer_id(row)
        answer = api.post(
            "/v1/decisions", json={"profile_id": customer, "placements": HERO_AND_SIDEBAR}
        )
        assert answer.status_code == 200, answer.text
        body = msgspec.convert(answer.json(), DecisionOut)  # the documented shape
        expected = plan.decide(
            DecisionRequest.for_placements(
                ["web_home_hero", "web_account_sidebar"],
                profile=demo_profiles.profile(customer, as_of=DEMO_AS_OF),
                now=dt.datetime.fromisoformat(body.decided_at.rstrip("Z")),
            )
        )
        got = [[o.offer for o in p.offers] for p in body.placements]
        assert got == [[p.offer_code for p in pd.propositions] for pd in expected.placements]
        assert body.profile_id == customer and body.deployment == 1 and body.recorded
        assert not body.warnings


def test_every_proposition_is_recorded_with_a_unique_tracking_code(
    api: TestClient, demo: Deployed
) -> None:
    codes = []
    for _ in range(3):
        body = api.post(
            "/v1/decisions",
            json={"profile_id": "C0000001", "placements": HERO_AND_SIDEBAR},
        ).json()
        codes += [o["tracking_code"] for p in body["placements"] for o in p["offers"]]
    assert len(set(codes)) == len(codes) > 3
    with demo.db.session() as s:
        stored = set(s.scalars(select(PropositionRow.tracking_code)))
    assert stored == set(codes)


def test_a_test_request_records_nothing(api: TestClient, demo: Deployed) -> None:
    body = api.post(
        "/v1/decisions",
        json={"profile_id": "C0000001", "placements": HERO_AND_SIDEBAR, "record": False},
    ).json()
    assert body["recorded"] is False and body["placements"][0]["offers"]
    with demo.db.session() as s:
        assert s.scalar(select(func.count()).select_from(PropositionRow)) == 0


def test_inline_and_anonymous_profiles(api: TestClient) -> None:
    student = {"age": 20, "is_student": True, "products": [], "has_mobile_app": True}
    body = api.post(
        "/v1/decisions", json={"profile": student, "placements": [{"placement": "web_home_hero"}]}
    ).json()
    assert body["profile_id"] is None
    assert body["placements"][0]["offers"][0]["offer"] == "ACC-STUDENT"
    anonymous = api.post(
        "/v1/decisions", json={"placements": [{"placement": "web_home_hero"}]}
    ).json()
    assert anonymous["profile_id"] is None and anonymous["placements"][0]["channel"] == "web"


def test_an_unknown_profile_id_is_decided_with_what_was_sent_and_says_so(api: TestClient) -> None:
    body = api.post(
        "/v1/decisions",
        json={"profile_id": "NOBODY", "placements": [{"placement": "web_home_hero"}]},
    ).json()
    assert body["warnings"] == [
        "profile 'NOBODY' is not in table 'customers'; decided with the attributes the request sent"
    ]


def test_explain_tells_each_candidate_s_fate(api: TestClient) -> None:
    body = api.post(
        "/v1/decisions",
        json={
            "profile_id": "C0000001",
            "placements": [{"placement": "web_account_sidebar"}],
            "explain": True,
        },
    ).json()
    explain = body["placements"][0]["explain"]
    assert {t["step"] for t in explain} >= {"eligibility", "selected"}
    assert all(t["reason"] for t in explain)


def test_bad_requests_say_what_to_change(api: TestClient) -> None:
    def problem(body: bytes | str, status: int) -> str:
        answer = api.post("/v1/decisions", content=body)
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        detail: str = answer.json()["detail"]
        return detail

    assert "unknown field `placments`" in problem(b'{"placments": []}', 422)
    assert "`$.placements[0].count`" in problem(
        b'{"placements": [{"placement": "web_home_hero", "count": 0}]}', 422
    )
    assert "not valid JSON" in problem(b'{"placements": [', 400)
    assert "unknown placement 'web_home_heroo'; did you mean 'web_home_hero'?" in problem(
        b'{"placements": [{"placement": "web_home_heroo"}]}', 422
    )
    assert "profile.age: expected int" in problem(
        b'{"profile": {"age": "old"}, "placements": [{"placement": "web_home_hero"}]}', 422
    )
    assert "at most" in problem(b" " * (1 << 21), 413)


def test_keys_open_one_environment(demo: Deployed) -> None:
    with demo.client() as client:
        ask = {"placements": [{"placement": "web_home_hero"}]}
        assert client.post("/v1/decisions", json=ask, headers={"X-API-Key": ""}).status_code == 401
        wrong = client.post("/v1/decisions", json=ask, headers={"X-API-Key": "ovk_nope"})
        assert wrong.status_code == 401 and "not valid" in wrong.json()["detail"]
        bearer = {"Authorization": f"Bearer {demo.key}", "X-API-Key": ""}
        assert client.post("/v1/decisions", json=ask, headers=bearer).status_code == 200
        from overture.design import access
        from tests.design.helpers import ADMIN

        with demo.db.session() as s:
            production = access.create_api_key(s, ADMIN, "production", "web").key
        answer = client.post("/v1/decisions", json=ask, headers={"X-API-Key": production})
        assert answer.status_code == 503  # production has no deployment yet
        assert "overture deploy --env production" in answer.json()["detail"]
        assert answer.headers["retry-after"] == "1"


def test_a_node_serves_only_the_environments_it_was_given(demo: Deployed) -> None:
    with demo.client(environments=["production"]) as client:
        answer = client.post("/v1/decisions", json={"placements": [{"placement": "web_home_hero"}]})
        assert answer.status_code == 421
        assert "does not serve environment 'staging'" in answer.json()["detail"]


def test_decisions_leave_no_reference_cycles_of_the_runtime(api: TestClient) -> None:
    """What a decision builds is freed with its answer (reference counting), not left for
    the garbage collector, whose passes stop the event loop (docs/runtime.md, "Speed").
    The test client's own machinery may leave cycles: only Overture's objects count."""
    body = {"profile_id": demo_profiles.customer_id(3), "placements": HERO_AND_SIDEBAR}
    assert api.post("/v1/decisions", json=body).status_code == 200  # caches filled
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for row in range(20):
            body["profile_id"] = demo_profiles.customer_id(row)
            assert api.post("/v1/decisions", json=body).status_code == 200
        gc.collect()
        ours = sorted(
            {type(o).__qualname__ for o in gc.garbage if type(o).__module__.startswith("overture")}
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert ours == [], f"decisions left reference cycles of: {', '.join(ours)}"
