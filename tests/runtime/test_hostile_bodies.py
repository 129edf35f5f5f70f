"""Hostile bytes on every runtime route, on both kinds of node: whatever body is sent, the
answer is never a 5xx, and a refusal is a 400 (or 4xx) problem+json that says what was
wrong; the servlet answers with its batch envelope or its own 400 problem.

The bodies are raw bytes, not only JSON values: any bytes (hypothesis `st.binary()`), and
valid bodies mutated as a broken client or an attacker would send them (truncated, bytes
that are not UTF-8 inside a string, a NUL raw or escaped, a lone surrogate, numbers beyond
any range, nesting deeper than the decoder goes). A runtime-only node (`overture serve
--role runtime`: the runtime's app alone) and the combined node (`--role all`: the design
API and the console mounted behind it) serve the same handlers; both are fuzzed.

tests/runtime/test_servlet_fuzz.py fuzzes the servlet's commands as JSON values,
tests/runtime/test_schemathesis.py the API from its OpenAPI description.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from overture.runtime import RuntimeNode, RuntimeSettings, create_app
from overture.server import create_server
from tests.deployed import Deployed
from tests.runtime.test_servlet import SERVLET, START
from tests.runtime.test_servlet_fuzz import _assert_batch

FUZZ = settings(  # as many examples as the profile says (tests/conftest.py)
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

SESSION = "hostile"  # started by the fixture: PUT .../audience reaches a live session
AUDIENCE = f"/v1/sessions/{SESSION}/audience"

# Every route that reads a body, with a body it takes.
VALID: dict[tuple[str, str], Any] = {
    ("POST", "/v1/decisions"): {
        "profile_id": "C0000042",
        "placements": [{"placement": "web_home_hero", "count": 1}],
        "context": {"device": "mobile", "intent": "save"},
        "record": False,
    },
    ("POST", "/v1/events"): {
        "events": [
            {"name": "visit", "profile_id": "C0000042", "attributes": {"page": "home"}},
            {"name": "presented", "offer": "CC-GOLD", "profile_id": "C0000042"},
        ]
    },
    ("POST", "/v1/sessions"): {
        "session_id": "hostile-2",
        "profile_id": "C0000042",
        "context": {"device": "mobile"},
    },
    ("PUT", AUDIENCE): {"profile_id": "C0000042", "context": {"device": "desktop"}},
    ("POST", SERVLET): {
        "sessionId": "hostile-servlet",
        "commands": [
            START,
            {"action": "getOffers", "ip": "web_home_hero", "numberRequested": 1},
            {"action": "postEvent", "event": "Visit", "parameters": [{"n": "page", "v": "h"}]},
        ],
    },
}
ROUTES = list(VALID)
# The routes that read no body, and methods a route does not take: a body is ignored, or
# the answer is the router's 404 or 405, as problem+json.
OTHERS = [
    ("GET", f"/v1/sessions/{SESSION}"),
    ("DELETE", "/v1/sessions/no-such-session"),
    ("GET", "/v1/profiles/C0000042/history"),
    ("PATCH", "/v1/decisions"),
    ("GET", "/v1/events"),
    ("PUT", "/v1/sessions"),
    ("POST", AUDIENCE),
    ("DELETE", SERVLET),
    ("POST", "/v1/nowhere"),
]

# -- bytes -------------------------------------------------------------------------------
NOT_UTF8 = [
    b"\xff",
    b"\xfe\xff",
    b"\x80",  # a continuation byte alone
    b"\xc3",  # a lead byte cut short
    b"\xe2\x82",
    b"\xc0\xaf",  # an overlong "/"
    b"\xed\xa0\x80",  # a surrogate, encoded
    b"\xf4\x90\x80\x80",  # past U+10FFFF
    b"\xf8\x88\x80\x80\x80",
]
IN_A_STRING = [
    *NOT_UTF8,
    b"\x00",  # raw: JSON has no raw control characters
    b"\\u0000",
    b"\\ud800",  # a lone surrogate, escaped
    b"\\udc00",
    b"\\",
    b'"',
    b"\n",
    "\u00e9\u4e2d\U0001f600".encode(),
]
HUGE = [
    b"1e400",
    b"-1e400",
    b"1e-400",
    b"7" * 5000,
    b"-" + b"9" * 40,
    b"NaN",
    b"Infinity",
    b"1.5",
    b"-0",
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 5000 + b"1" + b"}" * 5000,
    b"[" * 700 + b"]" * 700,
    b'"' + b"x" * 5000 + b'"',
    b'"\xff\xfe"',
    b"null",
    b"true",
    b"{}",
    b"[]",
]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path in a JSON value (the value itself first)."""
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*path, i))


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replace(value[path[0]], path[1:], new)
    return copy


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


@st.composite
def mutated(draw: st.DrawFn, route: tuple[str, str]) -> bytes:
    """A valid body for `route`, broken in one to three places."""
    body = VALID[route]
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(body))
        path = draw(st.sampled_from(paths))
        kind = draw(st.sampled_from(["raw value", "in a string"]))
        if kind == "raw value":
            body = _replace(body, path, msgspec.Raw(draw(st.sampled_from(HUGE))))
        else:
            old = _get(body, path)
            text = old.encode() if isinstance(old, str) else b""
            cut = draw(st.integers(0, len(text)))
            bad = draw(st.sampled_from(IN_A_STRING) | st.binary(min_size=1, max_size=4))
            body = _replace(body, path, msgspec.Raw(b'"' + text[:cut] + bad + text[cut:] + b'"'))
    raw = msgspec.json.encode(body)
    how = draw(st.sampled_from(["whole", "truncated", "inserted", "bom"]))
    if how == "truncated":
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif how == "inserted":
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from(IN_A_STRING)) + raw[at:]
    elif how == "bom":
        raw = b"\xef\xbb\xbf" + raw
    return raw


def any_route_bytes() -> st.SearchStrategy[tuple[tuple[str, str], bytes]]:
    return st.sampled_from(ROUTES).flatmap(
        lambda route: st.tuples(
            st.just(route),
            mutated(route)
            | st.binary(max_size=300)
            | st.text(max_size=100).map(str.encode)
            | st.sampled_from(NOT_UTF8).map(lambda b: b'{"profile_id": "' + b + b'"}'),
        )
    )


# -- the node ------------------------------------------------------------------------------
@pytest.fixture(params=["runtime", "all"])
def node(request: pytest.FixtureRequest, demo: Deployed) -> Iterator[TestClient]:
    """A runtime-only node (`overture serve --role runtime`) or the combined one (`--role
    all`), on the demo catalog, with a session started."""
    runtime = RuntimeNode(RuntimeSettings(poll_seconds=0.1), db=demo.db)
    app = create_app(runtime) if request.param == "runtime" else create_server(runtime)
    with TestClient(app, headers={"X-API-Key": demo.key}) as client:
        started = client.post("/v1/sessions", json={"session_id": SESSION})
        assert started.status_code == 201, started.text
        yield client


def _send(client: TestClient, route: tuple[str, str], body: bytes) -> Any:
    method, path = route
    answer = client.request(
        method, path, content=body, headers={"content-type": "application/json"}
    )
    where = f"{method} {path} {body[:200]!r}"
    assert answer.status_code < 500, f"{where}: {answer.status_code} {answer.text}"
    if answer.status_code >= 400:
        _assert_problem(answer, where)
    elif path == SERVLET:
        reply = answer.json()
        _assert_batch(reply, len(reply["responses"]))
    return answer


def _assert_problem(answer: Any, where: str) -> None:
    assert answer.headers["content-type"] == "application/problem+json", (where, answer.text)
    problem = answer.json()
    assert problem["status"] == answer.status_code, (where, problem)
    assert isinstance(problem["title"], str) and problem["title"], (where, problem)
    assert isinstance(problem["detail"], str) and len(problem["detail"]) > 5, (where, problem)


# -- the tests -----------------------------------------------------------------------------
def test_bytes_that_are_not_utf8_inside_a_string_are_a_400_everywhere(node: TestClient) -> None:
    """msgspec raises UnicodeDecodeError (no DecodeError) for them: it was a 500, with a
    traceback in the log, on every route that reads a body, and the servlet's answer was
    a bare 500 text."""
    body = b'{"profile_id":"\xff\xfe","placements":[{"placement":"web_home_hero"}]}'
    for route in ROUTES:
        answer = _send(node, route, body)
        assert answer.status_code == 400, (route, answer.text)
        detail = answer.json()["detail"]
        assert "not valid UTF-8 (byte 0xff at offset 15)" in detail, (route, detail)


@pytest.mark.parametrize("bad", NOT_UTF8, ids=[b.hex() for b in NOT_UTF8])
def test_each_kind_of_broken_utf8_in_a_string(node: TestClient, bad: bytes) -> None:
    for route in ROUTES:
        body = msgspec.json.encode(VALID[route]).replace(b"C0000042", b"C" + bad, 1)
        if route[1] == SERVLET:
            body = msgspec.json.encode(VALID[route]).replace(b"Visit", b"V" + bad, 1)
        answer = _send(node, route, body)
        assert answer.status_code == 400, (route, answer.text)
        assert "UTF-8" in answer.json()["detail"], (route, answer.text)


@FUZZ
@given(sent=any_route_bytes())
def test_any_bytes_on_any_route_are_answered(
    node: TestClient, sent: tuple[tuple[str, str], bytes]
) -> None:
    route, body = sent
    _send(node, route, body)


@FUZZ
@given(route=st.sampled_from(OTHERS), body=st.binary(max_size=200) | mutated(ROUTES[0]))
def test_any_bytes_on_the_other_routes_and_methods_are_answered(
    node: TestClient, route: tuple[str, str], body: bytes
) -> None:
    _send(node, route, body)


def test_both_node_kinds_answer_other_methods_with_405(node: TestClient) -> None:
    """The combined node mounts the design API behind the runtime's routes: a runtime path
    with a method it does not take is the runtime's 405 (with Allow) there too, not the
    design API's 404."""
    for method, path, allow in [
        ("PATCH", "/v1/decisions", "POST"),
        ("GET", "/v1/events", "POST"),
        ("POST", AUDIENCE, "PUT"),
        ("DELETE", SERVLET, "POST"),
    ]:
        answer = _send(node, (method, path), b"\xff")
        assert answer.status_code == 405, (method, path, answer.text)
        assert allow in answer.headers["allow"], (method, path, answer.headers)
