"""Schemathesis against the runtime API's published OpenAPI description
(/runtime/openapi.json): generated requests for every operation (bounded), with a staging
API key, on a node serving the demo catalog. No request may get a 5xx answer, every
response must match the documented schema (status code, content type, body), and every
refused request must be a 4xx problem+json saying what was wrong.

The node is a real uvicorn server (module-scoped, on SQLite and, when
OVERTURE_TEST_POSTGRES_URL is set, PostgreSQL, which refuses inputs SQLite takes: NUL in
text); schemathesis calls it over HTTP.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import positive_data_acceptance

from overture.catalog import load_catalog
from overture.demo import CATALOG_PATH
from overture.demo import profiles as demo_profiles
from overture.design import access
from overture.runtime import RuntimeNode, RuntimeSettings, create_app, openapi
from overture.store import Database
from overture.store.profiles import load_rows
from tests.demo import DEMO_AS_OF
from tests.deployed import DEMO_PROFILES, deploy
from tests.design.helpers import ADMIN, demo_files
from tests.design.server import serve_app
from tests.integration import postgres_schema
from tests.schemathesis_checks import not_really_negative

# The document a node publishes at /runtime/openapi.json (create_app serves exactly this;
# test_the_published_description_is_the_one_tested holds it to that).
DOCUMENT = msgspec.json.decode(msgspec.json.encode(openapi.document()))
schema = schemathesis.openapi.from_dict(DOCUMENT)

# CI runs a fixed, bounded set of examples (derandomized, so a red run is reproducible);
# OVERTURE_SCHEMATHESIS_EXAMPLES=150 explores further with fresh random examples.
_DEEP = int(os.environ.get("OVERTURE_SCHEMATHESIS_EXAMPLES", "0"))

SETTINGS = settings(
    max_examples=_DEEP or 10,
    derandomize=not _DEEP,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


class Node:
    def __init__(self, kind: str, db: Database, url: str, key: str) -> None:
        self.kind, self.db, self.url = kind, db, url
        # Both ways of sending a key: a generated Authorization header (the bearer scheme)
        # would otherwise win over X-API-Key and be refused.
        self.headers = {"X-API-Key": key, "Authorization": f"Bearer {key}"}

    def send(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        content = body if isinstance(body, bytes | None) else msgspec.json.encode(body)
        headers = headers or self.headers
        return httpx.request(method, self.url + path, content=content, headers=headers)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]
)
def node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Node]:
    """A runtime node serving the demo catalog (staging) with a few hundred customers."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = str(tmp_path_factory.mktemp("runtime") / "overture.db")
        else:
            url = stack.enter_context(postgres_schema())
        db = Database(url)
        stack.callback(db.dispose)
        db.upgrade()
        key = deploy(db, demo_files())
        audience = load_catalog(CATALOG_PATH).audiences[0]
        load_rows(db, audience, demo_profiles.generate(DEMO_PROFILES, as_of=DEMO_AS_OF).to_pylist())
        app = create_app(RuntimeNode(RuntimeSettings(poll_seconds=0.1), db=db))
        url = stack.enter_context(serve_app(app))
        yield Node(request.param, db, url, key)


def test_the_published_description_is_the_one_tested(node: Node) -> None:
    published = httpx.get(f"{node.url}/runtime/openapi.json")
    assert published.status_code == 200
    assert published.headers["content-type"] == "application/json"
    assert published.json() == DOCUMENT


@pytest.mark.slow
@schema.parametrize()
@SETTINGS
def test_no_server_errors_and_answers_as_documented(case: Any, node: Node) -> None:
    response = case.call(base_url=node.url, headers=node.headers)
    where = f"{case.method} {case.formatted_path}"
    assert response.status_code < 500, f"{where}: {response.text}"
    # every error, including the router's own 404 and 405 (with its Allow header)
    if response.status_code >= 400:
        _assert_problem(response, where)
    # Every check but "schema-valid data is accepted": the catalog has rules a schema cannot
    # express (which placements, audiences and tracking codes exist, which sessions are
    # live), so such requests get a 404 or a 422 saying what is wrong, by design.
    try:
        case.validate_response(
            response, excluded_checks=[positive_data_acceptance], headers=node.headers
        )
    except (Failure, FailureGroup) as exc:
        failures = list(exc.exceptions) if isinstance(exc, FailureGroup) else [exc]
        real = [f for f in failures if not not_really_negative(f, case)]
        if real:
            raise FailureGroup(real, f"{case.as_curl_command()}\nquery: {case.query}") from None


def _assert_problem(response: Any, where: str) -> None:
    """A refusal is RFC 9457 problem+json whose detail says what was wrong."""
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type == "application/problem+json", (
        f"{where}: {response.status_code} {content_type}: {response.text}"
    )
    body = response.json()
    assert body["status"] == response.status_code, f"{where}: {body}"
    assert isinstance(body["detail"], str) and len(body["detail"]) > 10, f"{where}: {body}"


# Inputs the bounded run above rarely generates, found by probing and by deeper runs
# (OVERTURE_SCHEMATHESIS_EXAMPLES): each was a 500 on PostgreSQL (which refuses NUL in
# text) or on both databases. Each is now a 4xx problem+json saying what is wrong.
HERO = [{"placement": "web_home_hero"}]
CUSTOM = {"name": "custom", "profile_id": "C0000001"}
REFUSED: dict[str, tuple[str, str, Any]] = {
    "nul-profile-id": ("POST", "/v1/decisions", {"placements": HERO, "profile_id": "a\x00"}),
    "nul-inline-id": ("POST", "/v1/decisions", {"placements": HERO, "profile": {"x": "\x00"}}),
    "nul-session-id": ("POST", "/v1/sessions", {"session_id": "s\x00"}),
    "nul-event-id": ("POST", "/v1/events", {**CUSTOM, "event_id": "e\x00"}),
    "nul-attribute": ("POST", "/v1/events", {**CUSTOM, "attributes": {"a\x00": 1}}),
    "nul-tracking-code": ("POST", "/v1/events", {**CUSTOM, "tracking_code": "t\x00"}),
    "nul-in-path": ("GET", "/v1/profiles/a%00b/history", None),
    "nul-in-query": ("GET", "/v1/profiles/a/history?audience=%00", None),
    "nul-session-path": ("DELETE", "/v1/sessions/a%00b", None),
    "at-before-year-1": ("POST", "/v1/events", {**CUSTOM, "at": "0001-01-01T00:00:00+14:00"}),
    "at-after-9999": (
        "POST",
        "/v1/events",
        {"events": [CUSTOM, {**CUSTOM, "at": "9999-12-31T23:59:59-14:00"}]},
    ),
    "superscript-limit": ("GET", "/v1/profiles/a/history?limit=%C2%B2", None),
    "nested-too-deep": ("POST", "/v1/sessions", b'{"context": {"a": %s}}' % (b"[" * 5000)),
}


@pytest.mark.parametrize("name", REFUSED)
def test_unstorable_and_out_of_range_inputs_are_refused_as_problems(node: Node, name: str) -> None:
    method, path, body = REFUSED[name]
    answer = node.send(method, path, body)
    assert 400 <= answer.status_code < 500, answer.text
    _assert_problem(Response.from_any(answer), f"{method} {path}")
    if name.startswith("nul"):
        assert "NUL" in answer.json()["detail"], answer.text


def test_an_inline_profile_id_longer_than_the_history_holds(node: Node) -> None:
    """The id field sent inline in `profile` becomes the profile id (service.py): bounded
    like `profile_id` to the 128 characters the history's columns hold."""
    ask = {"placements": HERO, "profile": {"customer_id": "C" * 129}}
    answer = node.send("POST", "/v1/decisions", ask)
    assert answer.status_code == 422, answer.text
    assert "1 to 128 characters" in answer.json()["detail"], answer.text


def test_a_profile_history_answers_as_documented(node: Node) -> None:
    """The history of a profile with propositions and events (generated cases see empty
    ones), held to the published schema."""
    profile = f"C{node.kind[:1]}000042"  # one per database: the node is the module's
    ask = {"profile_id": profile, "placements": [{"placement": "web_account_sidebar"}]}
    decided = node.send("POST", "/v1/decisions", ask).json()
    code = decided["placements"][0]["offers"][0]["tracking_code"]
    events = [
        {"name": "click", "tracking_code": code, "attributes": {"x": [1, "a"]}},
        {"name": "visit", "profile_id": profile},
    ]
    assert node.send("POST", "/v1/events", {"events": events}).json()["stored"] == 2
    answer = node.send("GET", f"/v1/profiles/{profile}/history")
    schema["/v1/profiles/{id}/history"]["GET"].validate_response(answer)
    history = answer.json()
    assert len(history["propositions"]) >= 2 and len(history["other_events"]) == 1
    clicked = next(p for p in history["propositions"] if p["tracking_code"] == code)
    assert [e["kind"] for e in clicked["events"]] == ["accepted"]


def test_an_environment_without_deployment_answers_as_documented(node: Node) -> None:
    with node.db.session() as s:
        key = access.create_api_key(s, ADMIN, "production", "tests").key
    answer = node.send("POST", "/v1/decisions", {"placements": HERO}, {"X-API-Key": key})
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
    schema["/v1/decisions"]["POST"].validate_response(answer)
    assert "deploy" in answer.json()["detail"]
