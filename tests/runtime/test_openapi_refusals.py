"""The runtime's OpenAPI description (/runtime/openapi.json) says what the runtime refuses
beyond its schemas: what the deployed catalog decides (placements, audiences, offers,
tracking codes) and the node's clock (events in the future). Each refusal it documents is
sent here, and the answer held to the documented example; and the one rule a schema can
say (a body of one event names what it is about) is in the schema.
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema_rs
import msgspec
import pytest
from starlette.testclient import TestClient

from overture.runtime import openapi

DOCUMENT = msgspec.json.decode(msgspec.json.encode(openapi.document()))
HERO = [{"placement": "web_home_hero"}]
SESSION = "openapi-refusals"
GOLD = {"name": "presented", "offer": "CC-GOLD", "profile_id": "C0000042"}

# (method, path as documented, example) -> (path sent, body) that the node refuses so
REQUESTS: dict[tuple[str, str, str], tuple[str, Any]] = {
    ("post", "/v1/decisions", "unknown-placement"): (
        "/v1/decisions",
        {"placements": [{"placement": "web_home_heroo"}]},
    ),
    ("post", "/v1/decisions", "unknown-audience"): (
        "/v1/decisions",
        {"placements": HERO, "audience": "custmer"},
    ),
    ("post", "/v1/sessions", "unknown-audience"): ("/v1/sessions", {"audience": "custmer"}),
    ("put", "/v1/sessions/{id}/audience", "unknown-audience"): (
        f"/v1/sessions/{SESSION}/audience",
        {"audience": "custmer"},
    ),
    ("post", "/v1/events", "only-a-name"): ("/v1/events", {"name": "visit"}),
    ("post", "/v1/events", "in-the-future"): (
        "/v1/events",
        {**GOLD, "at": "9999-12-31T00:00:00Z"},
    ),
    ("post", "/v1/events", "unknown-offer"): ("/v1/events", {**GOLD, "offer": "CC-GOLDD"}),
    ("post", "/v1/events", "unknown-tracking-code"): (
        "/v1/events",
        {"name": "click", "tracking_code": "e3b0c442.1"},
    ),
}


def _documented() -> dict[tuple[str, str, str], tuple[int, dict[str, Any]]]:
    """Every problem example the document gives: (method, path, name) -> (status, problem)."""
    found = {}
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                content = response.get("content", {}).get("application/problem+json", {})
                for name, example in content.get("examples", {}).items():
                    found[(method, path, name)] = (int(status), example["value"])
    return found


def _masked(text: str) -> str:
    """Without the numbers and times that change from one run to the next."""
    return re.sub(r"[\d,]+", "#", text)


def test_every_documented_refusal_has_a_request_here() -> None:
    assert set(_documented()) == set(REQUESTS)


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
@pytest.mark.parametrize("case", list(REQUESTS), ids=["-".join(k[1:]) for k in REQUESTS])
def test_each_documented_refusal_is_what_the_runtime_answers(
    api: TestClient, case: tuple[str, str, str]
) -> None:
    status, example = _documented()[case]
    path, body = REQUESTS[case]
    assert api.post("/v1/sessions", json={"session_id": SESSION}).status_code == 201
    answer = api.request(case[0].upper(), path, json=body)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["title"] == example["title"], problem
    assert _masked(problem["detail"]) == _masked(example["detail"]), problem


def test_the_refusals_are_described_where_clients_look() -> None:
    """On the answers of each operation and on the fields the catalog or the clock decide."""
    paths = DOCUMENT["paths"]
    decisions = paths["/v1/decisions"]["post"]["responses"]["422"]["description"]
    assert "unknown placement" in decisions and "unknown audience" in decisions
    events = paths["/v1/events"]["post"]["responses"]
    for what in ("names only itself", "ahead of the node's clock", "offer no deployment"):
        assert what in events["422"]["description"], what
    assert "`rejected`" in events["200"]["description"]
    for method, path in (("post", "/v1/sessions"), ("put", "/v1/sessions/{id}/audience")):
        assert "unknown audience" in paths[path][method]["responses"]["422"]["description"]
    schemas = DOCUMENT["components"]["schemas"]
    for schema, field, what in [
        ("PlacementAsk", "placement", "unknown placement"),
        ("DecisionIn", "audience", "unknown audience"),
        ("SessionIn", "audience", "unknown audience"),
        ("AudienceIn", "audience", "unknown audience"),
        ("EventIn", "offer", "unknown offer"),
        ("EventIn", "tracking_code", "unknown tracking code"),
        ("EventIn", "at", "the event is in the future"),
    ]:
        assert what in schemas[schema]["properties"][field]["description"], (schema, field)


EVENTS_BODY = "#/paths/~1v1~1events/post/requestBody/content/application~1json/schema"


@pytest.mark.parametrize(
    ("body", "valid"),
    [
        ({"name": "visit"}, False),
        ({"name": "visit", "at": "2026-01-01T00:00:00Z", "attributes": {"a": 1}}, False),
        ({"name": "visit", "profile_id": None, "offer": None}, False),
        ({"name": "visit", "profile_id": "C0000042"}, True),
        ({"name": "visit", "session_id": "s-1"}, True),
        ({"name": "click", "tracking_code": "e3b0c442.1"}, True),
        ({"name": "presented", "offer": "CC-GOLD"}, True),
        # in a batch an event is refused on its own, the others stored: not invalid
        ({"events": [{"name": "visit"}, {"name": "visit", "profile_id": "C1"}]}, True),
    ],
)
def test_a_body_of_one_event_that_names_only_itself_is_invalid_by_the_schema(
    body: dict[str, Any], valid: bool
) -> None:
    validator = jsonschema_rs.Draft202012Validator({**DOCUMENT, "$ref": EVENTS_BODY})
    assert validator.is_valid(body) is valid
