"""The hot routes answer the same through the fast path (what a node serves) and through
the Starlette routes behind it (what the OpenAPI document describes)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from overture.runtime import RuntimeNode, RuntimeSettings, create_app
from overture.runtime.fastpath import FastPath
from tests.deployed import Deployed

CASES: list[tuple[str, bytes, dict[str, str]]] = [
    ("/v1/decisions", b"{not json", {}),
    ("/v1/decisions", b'{"placements": []}', {}),
    ("/v1/decisions", b'{"placements": [{"placement": "nowhere"}]}', {}),
    ("/v1/decisions", b'{"placements": [{"placement": "banner"}], "x": "\\u0000"}', {}),
    ("/v1/decisions", b"{}", {"X-API-Key": "ovk_wrong"}),
    ("/v1/decisions", b" " * (1 << 21), {}),
    ("/v1/events", b'{"name": "view", "event_id": "e1"}', {}),
    ("/v1/events", b'{"events": [1, 2]}', {}),
    ("/v1/events", b"[]", {}),
    ("/interact/servlet/RestServlet", b'{"commands": 3}', {}),
    ("/interact/servlet/RestServlet", b"\xff\xfe", {}),
]


@pytest.fixture
def both(shop: Deployed) -> Any:
    app = create_app(RuntimeNode(RuntimeSettings(poll_seconds=0.1), db=shop.db))
    assert isinstance(app, FastPath)
    with TestClient(app, headers={"X-API-Key": shop.key}) as fast:
        slow = TestClient(app.app, headers={"X-API-Key": shop.key})  # the Starlette app
        yield fast, slow


@pytest.mark.parametrize(("path", "body", "headers"), CASES)
def test_both_ways_answer_alike(both: Any, path: str, body: bytes, headers: dict[str, str]) -> None:
    fast, slow = both
    a = fast.post(path, content=body, headers=headers)
    b = slow.post(path, content=body, headers=headers)
    assert (a.status_code, a.headers["content-type"], a.content) == (
        b.status_code,
        b.headers["content-type"],
        b.content,
    )
    assert a.headers["content-length"] == str(len(a.content))


def test_other_methods_and_spellings_go_to_starlette(both: Any) -> None:
    fast, _slow = both
    wrong = fast.get("/v1/decisions")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    assert wrong.headers["content-type"] == "application/problem+json"
    slash = fast.post("/v1/decisions/", json={}, follow_redirects=False)
    assert slash.status_code == 307 and slash.headers["location"].endswith("/v1/decisions")
    assert fast.get("/healthz").json() == {"status": "ok"}


def test_a_decision_through_the_fast_path(both: Any) -> None:
    fast, _slow = both
    answer = fast.post("/v1/decisions", json={"placements": [{"placement": "banner"}]})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["placements"][0]["offers"][0]["offer"] == "BIG"


def test_a_body_sent_in_chunks_is_read_whole_and_bounded(both: Any) -> None:
    fast, _slow = both

    def chunks(n: int, size: int) -> Any:
        yield from (b" " * size for _ in range(n))

    small = fast.post(
        "/v1/decisions",
        content=iter([b'{"placements": ', b'[{"placement": "banner"}]}']),
    )
    assert small.status_code == 200, small.text
    big = fast.post("/v1/decisions", content=chunks(40, 64 * 1024))  # 2.5 MiB, no length
    assert big.status_code == 413
    assert big.json()["title"] == "Body too large"


def _drive(app: FastPath, scope: dict[str, Any]) -> list[dict[str, Any]]:
    import asyncio

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_the_fast_path_routes_under_a_root_path_and_reads_the_first_of_a_repeated_header() -> None:
    """Behind a proxy (`uvicorn --root-path /offers`), the path carries the prefix: the hot
    routes are still found. A header sent twice counts once, the first, as Starlette has it."""
    from overture.runtime.fastpath import Answer, Call

    seen: list[str | None] = []

    async def handler(call: Call) -> Answer:
        seen.append(call.headers.get("x-api-key"))
        return Answer(200, b"{}")

    async def elsewhere(scope: Any, receive: Any, send: Any) -> None:
        seen.append("starlette")

    app = FastPath(elsewhere, {"/v1/decisions": handler})
    base = {"type": "http", "method": "POST", "root_path": "/offers", "query_string": b""}
    headers = [(b"X-API-Key", b"first"), (b"x-api-key", b"second")]
    sent = _drive(app, {**base, "path": "/offers/v1/decisions", "headers": headers})
    assert seen == ["first"] and sent[0]["status"] == 200
    _drive(app, {**base, "path": "/v1/events", "headers": []})
    assert seen == ["first", "starlette"]
