"""Slow clients (server/protocol.py): headers and bodies sent a byte at a time are cut off,
honest requests are not, and past the connection limit a request gets 503 at once.

On real sockets: uvicorn in a thread with each of its protocols (httptools', h11's) and the
deadlines, and `overture serve` in a process with its options."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from overture.server import protocol
from overture.server.protocol import ClientLimits, GuardedH11
from tests.cli.test_server_cli import Served

HEADER_SECONDS = 1.0
BODY_SECONDS = 1.5
LIMITS = ClientLimits(header_seconds=HEADER_SECONDS, body_seconds=BODY_SECONDS, body_rate=1000)


async def echo(scope: Any, receive: Any, send: Any) -> None:
    """Answers with the length of the body it read (or nothing, when the client is gone)."""
    if scope["type"] != "http":
        return
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = json.dumps({"size": size}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _H11(GuardedH11):
    limits = LIMITS


def _httptools() -> type:
    assert protocol.Protocol is not GuardedH11, "httptools is a dependency (uvicorn[standard])"
    return type("_HttpTools", (protocol.Protocol,), {"limits": LIMITS})


class Threaded:
    """uvicorn serving `echo` in a thread on a free port."""

    def __init__(self, http: type, limit: int | None = None) -> None:
        config = uvicorn.Config(
            echo, host="127.0.0.1", port=0, http=http, lifespan="off", log_level="warning"
        )
        config.limit_concurrency = limit
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(params=["httptools", "h11"])
def threaded(request: pytest.FixtureRequest) -> Iterator[Threaded]:
    served = Threaded(_httptools() if request.param == "httptools" else _H11)
    yield served
    served.stop()


def trickle(port: int, start: bytes, rest: bytes, every: float) -> tuple[float, bytes, int]:
    """Send `start`, then `rest` a byte every `every` seconds until the server closes the
    connection: (seconds from the connection to the close, what came back, bytes of `rest`
    sent)."""
    sock = socket.create_connection(("127.0.0.1", port))
    began = time.monotonic()
    got, sent = b"", 0
    try:
        sock.sendall(start)
        sock.settimeout(every)
        for byte in rest:
            try:
                sock.send(bytes([byte]))
                sent += 1
            except OSError:  # closed (a reset: the server did not wait for the rest)
                break
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            got += chunk
            while chunk:  # the whole answer, then the close
                try:
                    chunk = sock.recv(4096)
                except OSError:
                    break
                got += chunk
            break
        return time.monotonic() - began, got, sent
    finally:
        sock.close()


HEADERS = b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: " + b"x" * 200 + b"\r\n\r\n"


def _post(size: int) -> bytes:
    return b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n" % size


@pytest.mark.slow  # waits for the deadlines
def test_headers_sent_a_byte_at_a_time_are_cut_off(threaded: Threaded) -> None:
    took, got, sent = trickle(threaded.port, b"", HEADERS, every=0.2)
    assert HEADER_SECONDS - 0.1 <= took < HEADER_SECONDS + 2, took
    assert sent < len(HEADERS)
    assert got.startswith(b"HTTP/1.1 408 ")


@pytest.mark.slow  # waits for the deadlines
def test_a_connection_that_sends_nothing_is_closed_without_an_answer(threaded: Threaded) -> None:
    with socket.create_connection(("127.0.0.1", threaded.port)) as sock:
        sock.settimeout(HEADER_SECONDS + 5)
        began = time.monotonic()
        assert sock.recv(100) == b""
        assert HEADER_SECONDS - 0.1 <= time.monotonic() - began < HEADER_SECONDS + 2


@pytest.mark.slow  # waits for the deadlines
def test_a_body_sent_a_byte_at_a_time_gets_408(threaded: Threaded) -> None:
    body = b"x" * 100
    took, got, sent = trickle(threaded.port, _post(len(body)), body, every=0.2)
    assert BODY_SECONDS - 0.1 <= took < BODY_SECONDS + 2, took
    assert sent < len(body)
    assert got.startswith(b"HTTP/1.1 408 ") or got == b""  # or reset, the 408 lost with it


@pytest.mark.slow  # waits for the deadlines
def test_the_next_requests_headers_are_due_too(threaded: Threaded) -> None:
    """After an answer on a kept-alive connection, the next request's first byte starts its
    headers' deadline (uvicorn's keep-alive timer stops at that byte)."""
    sock = socket.create_connection(("127.0.0.1", threaded.port))
    try:
        sock.sendall(_post(3) + b"abc")
        sock.settimeout(5)
        assert b'{"size": 3}' in sock.recv(4096)
        sock.settimeout(0.2)
        began = time.monotonic()
        got = b""
        for byte in HEADERS:
            try:
                sock.send(bytes([byte]))
                got = sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                break
            break
        assert HEADER_SECONDS - 0.1 <= time.monotonic() - began < HEADER_SECONDS + 2
        assert got.startswith(b"HTTP/1.1 408 ")
    finally:
        sock.close()


@pytest.mark.slow  # waits for the deadlines
def test_honest_requests_pass(threaded: Threaded) -> None:
    url = f"http://127.0.0.1:{threaded.port}/"
    with httpx.Client() as client:  # one kept-alive connection, several requests
        for size in (0, 10, 100_000):
            answer = client.post(url, content=b"y" * size)
            assert answer.status_code == 200 and answer.json() == {"size": size}
        time.sleep(HEADER_SECONDS + 0.5)  # an idle kept-alive connection is not cut by the deadline
        assert client.get(url).status_code == 200


@pytest.mark.slow  # waits for the deadlines
def test_a_body_at_an_honest_rate_may_take_longer_than_the_body_timeout(
    threaded: Threaded,
) -> None:
    """1,000 bytes a second earn one second each (body_rate): 5,000 bytes at 2,500 bytes a
    second take 2 s, past the 1.5 s timeout, and pass."""
    body = b"z" * 5000
    sock = socket.create_connection(("127.0.0.1", threaded.port))
    try:
        sock.sendall(_post(len(body)))
        began = time.monotonic()
        for i in range(0, len(body), 250):
            sock.sendall(body[i : i + 250])
            time.sleep(0.1)
        assert time.monotonic() - began > BODY_SECONDS
        sock.settimeout(5)
        answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200 ") and b'{"size": 5000}' in answer
    finally:
        sock.close()


@pytest.mark.slow  # waits for the deadlines
def test_past_the_connection_limit_a_request_gets_503_at_once() -> None:
    served = Threaded(_httptools(), limit=3)
    try:
        held = [socket.create_connection(("127.0.0.1", served.port)) for _ in range(3)]
        for sock in held:
            sock.sendall(b"GET / HTTP/1.1\r\n")  # headers never finished
        began = time.monotonic()
        answer = httpx.get(f"http://127.0.0.1:{served.port}/", timeout=5)
        assert answer.status_code == 503 and time.monotonic() - began < 1
        time.sleep(HEADER_SECONDS + 0.5)  # the held connections are cut: room again
        assert httpx.get(f"http://127.0.0.1:{served.port}/", timeout=5).status_code == 200
        for sock in held:
            sock.close()
    finally:
        served.stop()


def test_the_limits_come_from_overture_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(protocol.VARIABLE, raising=False)
    assert protocol.limits_from_environment() == ClientLimits()
    monkeypatch.setenv(
        protocol.VARIABLE,
        json.dumps({"database": "x", "client_limits": {"header_seconds": 2, "body_rate": 9}}),
    )
    assert protocol.limits_from_environment() == ClientLimits(header_seconds=2, body_rate=9)
    with pytest.raises(ValueError, match="positive"):
        ClientLimits(body_seconds=0)


# -- overture serve --------------------------------------------------------------------------
@pytest.mark.slow
def test_overture_serve_cuts_slow_clients_off_and_serves_the_others(tmp_path: Path) -> None:
    serve = Served(
        ["--header-timeout", "1", "--body-timeout", "1.5", "--max-connections", "4"], tmp_path
    )
    try:
        serve.wait_ready()
        _slow_clients_against(serve)
    finally:
        log = serve.stop()
    # a client cut off is no error of the application's (server.GoneQuietly)
    assert "Exception in ASGI application" not in log and "Traceback" not in log, log


def _slow_clients_against(serve: Served) -> None:
    took, got, _sent = trickle(serve.port, b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 0.2)
    assert 0.9 <= took < 3 and got.startswith(b"HTTP/1.1 408 "), (took, got)

    body = json.dumps({"name": "admin", "password": "a wrong password, slowly"}).encode()
    start = (
        b"POST /v1/design/auth/login HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    took, got, sent = trickle(serve.port, start, body, 0.2)
    assert 1.4 <= took < 3.5 and sent < len(body), took
    assert got.startswith(b"HTTP/1.1 408 ") or got == b""

    # the console's form too
    form = b"name=admin&password=" + b"p" * 40 + b"&csrf=x"
    start = (
        b"POST /console/login HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n\r\n" % len(form)
    )
    took, got, sent = trickle(serve.port, start, form, 0.2)
    assert 1.4 <= took < 3.5 and sent < len(form), took

    assert httpx.get(f"{serve.url}/healthz").status_code == 200
    wrong = httpx.post(f"{serve.url}/v1/design/auth/login", json={"name": "x", "password": "y"})
    assert wrong.status_code == 401

    held = [socket.create_connection(("127.0.0.1", serve.port)) for _ in range(4)]
    try:
        for sock in held:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        began = time.monotonic()
        assert httpx.get(f"{serve.url}/healthz", timeout=5).status_code == 503
        assert time.monotonic() - began < 1
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.3)
    assert httpx.get(f"{serve.url}/healthz").status_code == 200


def test_serve_refuses_a_timeout_of_zero(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from overture.cli import app

    result = CliRunner().invoke(app, ["serve", "--header-timeout", "0"])
    assert result.exit_code == 2
