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
    "400": "Malformed JSON or query",
    "401": "No API key, or one that is unknown or revoked",
    "404": "No such session",
    "413": "Body too large",
    "421": "This node does not serve the key's environment",
    "422": "Invalid request: what to change",
    "503": "No deployment yet, or too much contention: retry (Retry-After)",
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
    op["responses"]["503"]["headers"] = {
        "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
    }
    if body is not None:
        op["requestBody"] = _body(body)
    if params:
        op["parameters"] = params
    return op


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
    events_body = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/EventsIn"},
                        {"$ref": "#/components/schemas/EventIn"},
                    ]
                }
            }
        },
    }
    events = _operation("Post one event or a batch", _ok("EventsOut", "What happened to each"))
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
                )
            },
            "/v1/events": {"post": events},
            "/v1/sessions": {
                "post": _operation(
                    "Start a session", _ok("SessionOut", "The session", "201"), "SessionIn"
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
