"""The runtime API's OpenAPI description, generated from the msgspec structs it decodes
and the answer structs the tests hold its answers to (served at /runtime/openapi.json)."""

from __future__ import annotations

from typing import Any

import msgspec

import overture
from overture.runtime import schemas as s

_PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": True,
}
_ERRORS = {
    "400": "Malformed JSON (not JSON, not UTF-8, nested too deeply) or query",
    "401": "No API key, or one that is unknown or revoked",
    "404": "No such session",
    "413": "Body too large",
    "421": "This node does not serve the key's environment",
    "422": "Invalid request: what to change",
    "503": "No deployment yet, or too much contention: retry (Retry-After)",
}


# What the runtime refuses beyond what the schemas say (docs/runtime.md, "What the runtime
# refuses"): which placements, audiences, offers and tracking codes exist is the deployed
# catalog's, and when "now" is the node's clock, so the answers' descriptions list them,
# each with an example of its problem's detail (tests/runtime/test_openapi_refusals.py
# sends each and holds the answer to it).
_UNKNOWN_PLACEMENT = "unknown placement 'web_home_heroo'; did you mean 'web_home_hero'?"
_UNKNOWN_AUDIENCE = "unknown audience 'custmer'; did you mean 'customer'?"
_EVENT_REFUSALS = {
    "only-a-name": "an event names what it is about: give tracking_code (from a decision), "
    "or offer (with profile_id for a known profile); only a custom event may name no offer, "
    "for a profile or in a session",
    "in-the-future": "the event is in the future: `at` 9999-12-31T00:00:00Z is 2,912,438 "
    "days ahead of the node's clock (2026-01-05T10:00:00Z), and an event may be at most "
    "5 min ahead; send when it happened (in UTC, or with its offset), or leave `at` out "
    "for the time it is received",
    "unknown-offer": "unknown offer 'CC-GOLDD': no deployment of environment 'staging' has "
    "it; name an offer of the catalog deployed here by its code, or send the tracking code "
    "of the decision that proposed it",
    "unknown-tracking-code": "unknown tracking code 'e3b0c442.1': use a tracking code a "
    "decision of environment 'staging' returned, or name the offer and profile",
}
# operation -> status -> (description, the problem's title, examples of its detail)
_REFUSED: dict[str, dict[str, tuple[str, str, dict[str, str]]]] = {
    "decisions": {
        "422": (
            "Invalid request: what to change (`errors` lists each problem). Besides a body "
            "the schema refuses: a placement or an audience the deployed catalog does not "
            "have (`unknown placement`, `unknown audience`), an inline profile id longer "
            "than 128 characters, an `at` (taken by a demo server only), NUL in text",
            "Invalid request",
            {"unknown-placement": _UNKNOWN_PLACEMENT, "unknown-audience": _UNKNOWN_AUDIENCE},
        )
    },
    "events": {
        "422": (
            "No event stored: every event was refused (`results` says why for each), or "
            "the body is invalid. Besides what the schema refuses, an event is refused when "
            "it names only itself (no tracking code, offer, profile or session), when its "
            "`at` is more than 5 minutes (the node's setting) ahead of the node's clock, "
            "when it names an offer no deployment of the environment has had, or a tracking "
            "code no decision of the environment returned",
            "No event stored",
            _EVENT_REFUSALS,
        )
    },
    "sessions": {
        "422": (
            "Invalid request: what to change. Besides a body the schema refuses: an "
            "audience the deployed catalog does not have (`unknown audience`), NUL in text",
            "Invalid request",
            {"unknown-audience": _UNKNOWN_AUDIENCE},
        )
    },
}


def _body(name: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
    }


def _ok(name: str | None, description: str, status: str = "200") -> dict[str, Any]:
    if name is None:
        return {status: {"description": description}}
    schema = {"$ref": f"#/components/schemas/{name}"}
    return {
        status: {"description": description, "content": {"application/json": {"schema": schema}}}
    }


def _operation(
    summary: str,
    responses: dict[str, Any],
    body: str | None = None,
    params: list[Any] | None = None,
    refused: str | None = None,
) -> dict[str, Any]:
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    op: dict[str, Any] = {
        "summary": summary,
        "security": [{"apiKey": []}, {"bearer": []}],
        "responses": {
            **responses,
            **{code: {"description": d, "content": problem} for code, d in _ERRORS.items()},
        },
    }
    for code, (description, title, examples) in _REFUSED.get(refused or "", {}).items():
        content = {
            "schema": {"$ref": "#/components/schemas/Problem"},
            "examples": {
                name: {"value": _problem(int(code), title, detail)}
                for name, detail in examples.items()
            },
        }
        op["responses"][code] = {
            "description": description,
            "content": {"application/problem+json": content},
        }
    op["responses"]["503"]["headers"] = {
        "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
    }
    if body is not None:
        op["requestBody"] = _body(body)
    if params:
        op["parameters"] = params
    return op


def _problem(status: int, title: str, detail: str) -> dict[str, Any]:
    return {"type": "about:blank", "title": title, "status": status, "detail": detail}


def _describe(components: dict[str, Any]) -> None:
    """Say, on the fields whose values the deployed catalog or the node's clock decides,
    what is refused."""
    notes = {
        ("PlacementAsk", "placement"): "a placement of the catalog deployed to the key's "
        "environment; another is refused (422, `unknown placement`)",
        ("DecisionIn", "audience"): "an audience of the deployed catalog (default: its "
        "first); another is refused (422, `unknown audience`)",
        ("SessionIn", "audience"): "an audience of the deployed catalog (default: its "
        "first); another is refused (422, `unknown audience`)",
        ("AudienceIn", "audience"): "an audience of the deployed catalog; another is "
        "refused (422, `unknown audience`)",
        ("EventIn", "tracking_code"): "a tracking code a decision of this environment "
        "returned; another is refused (`unknown tracking code`)",
        ("EventIn", "offer"): "an offer's code, of the environment's current deployment or "
        "an earlier one; another is refused (`unknown offer`)",
        ("EventIn", "at"): "when it happened (RFC 3339; default: when received); more than "
        "5 minutes (the node's setting) ahead of the node's clock is refused (`the event "
        "is in the future`)",
        ("EventResultOut", "error"): "why the event was refused (status `rejected`)",
    }
    for (schema, field), note in notes.items():
        components[schema]["properties"][field]["description"] = note
    components["EventIn"]["description"] += (
        " It names what it is about: a tracking code, an offer, or (a custom event) a "
        "profile or a session; one that names only itself is refused (a body of one such "
        "event is invalid; in a batch, it is `rejected` in its result)."
    )


# A body of one event names what it is about (the batch's items are refused one by one:
# the others are stored, so a batch holding such an event is not invalid as a whole)
_NAMES_SOMETHING = [
    {"required": [field], "properties": {field: {"type": "string"}}}
    for field in ("tracking_code", "offer", "profile_id", "session_id")
]

_SESSION_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}


def document() -> dict[str, Any]:
    _, components = msgspec.json.schema_components(
        [
            s.DecisionIn,
            s.EventsIn,
            s.EventIn,
            s.SessionIn,
            s.AudienceIn,
            s.DecisionOut,
            s.EventsOut,
            s.SessionOut,
            s.HistoryOut,
        ],
        ref_template="#/components/schemas/{name}",
    )
    components["Problem"] = _PROBLEM
    # msgspec describes a datetime as any string; it takes RFC 3339 only
    at = components["EventIn"]["properties"]["at"]["anyOf"][0]
    assert at["type"] == "string"
    at["format"] = "date-time"
    _describe(components)
    events_body = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/EventsIn"},
                        {"$ref": "#/components/schemas/EventIn", "anyOf": _NAMES_SOMETHING},
                    ]
                }
            }
        },
    }
    events = _operation(
        "Post one event or a batch",
        _ok(
            "EventsOut",
            "What happened to each event: `stored`, `duplicate`, or `rejected` with the "
            "`error` that says why (the refusals the 422 lists), when others were stored",
        ),
        refused="events",
    )
    events["requestBody"] = events_body
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Overture runtime API",
            "version": overture.__version__,
            "description": "Decisions, events and sessions for touchpoints. Authenticate "
            "with a runtime API key (scoped to one environment). The Interact-compatible "
            "servlet is at POST /interact/servlet/RestServlet.",
        },
        "paths": {
            "/v1/decisions": {
                "post": _operation(
                    "Offers for one or more placements",
                    _ok("DecisionOut", "The offers per placement"),
                    "DecisionIn",
                    refused="decisions",
                )
            },
            "/v1/events": {"post": events},
            "/v1/sessions": {
                "post": _operation(
                    "Start a session",
                    _ok("SessionOut", "The session", "201"),
                    "SessionIn",
                    refused="sessions",
                )
            },
            "/v1/sessions/{id}": {
                "get": _operation(
                    "What a session holds", _ok("SessionOut", "The session"), params=[_SESSION_ID]
                ),
                "delete": _operation(
                    "End a session", _ok(None, "Ended", "204"), params=[_SESSION_ID]
                ),
            },
            "/v1/sessions/{id}/audience": {
                "put": _operation(
                    "Switch a session's audience or profile",
                    _ok("SessionOut", "The session"),
                    "AudienceIn",
                    [_SESSION_ID],
                    refused="sessions",
                )
            },
            "/v1/profiles/{id}/history": {
                "get": _operation(
                    "A profile's contact and response history",
                    _ok("HistoryOut", "Propositions (newest first) with their events"),
                    params=[
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        {"name": "audience", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                        },
                    ],
                )
            },
        },
        "components": {
            "schemas": components,
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }
