"""`overture serve --workers 2` (server/workers.py): connections are spread over the
workers, a worker that dies is replaced, a stop stops them all, a taken port is refused.

Real processes on real sockets; which worker holds a connection is read from /proc
(Linux, where the workers' sockets are spread: elsewhere uvicorn's supervisor serves)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from overture.server.workers import SPREADS
from tests.cli.test_server_cli import OVERTURE, Served

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SPREADS, reason="workers get sockets of their own on Linux only"),
]


def _tcp(port: int) -> list[tuple[str, str]]:
    """(state, inode) of the TCP sockets whose local port is `port` (IPv4)."""
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            found.append((fields[3], fields[9]))
    return found


def _inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _workers(served: Served) -> dict[int, tuple[int, int]]:
    """Each worker process's pid -> (its listening sockets, its connections) on the port."""
    pid = served.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    sockets = _tcp(served.port)
    out = {}
    for child in map(int, children):
        try:
            mine = _inodes(child)
        except FileNotFoundError:  # gone meanwhile
            continue
        listening = sum(1 for state, inode in sockets if state == "0A" and inode in mine)
        connected = sum(1 for state, inode in sockets if state == "01" and inode in mine)
        if listening:
            out[child] = (listening, connected)
    return out


def _wait_for_workers(served: Served, n: int, timeout: float = 60) -> dict[int, tuple[int, int]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _workers(served)
        if len(found) == n:
            return found
        time.sleep(0.1)
    raise AssertionError(f"expected {n} listening workers, found {_workers(served)}")


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[Served]:
    database = str(tmp_path / "overture.db")
    served = Served(["--role", "runtime", "--database", database, "--workers", "2"], tmp_path)
    try:
        served.wait_ready()
        _wait_for_workers(served, 2)
        yield served
    finally:
        if served.process.poll() is None:
            served.stop()


def _burst(port: int, n: int) -> list[socket.socket]:
    """`n` keep-alive connections opened at once, each having had one answer."""
    connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    for c in connections:
        c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    for c in connections:
        assert c.recv(4096).startswith(b"HTTP/1.1 200")
    return connections


def test_a_burst_of_connections_is_spread_over_the_workers(two_workers: Served) -> None:
    # uvicorn's shared socket gave one worker 29 to 32 of 32 in about one burst in three
    for _ in range(3):
        connections = _burst(two_workers.port, 32)
        try:
            held = sorted(connected for _listening, connected in _workers(two_workers).values())
            assert len(held) == 2 and sum(held) == 32
            assert held[0] >= 5, f"one worker got {held[0]} of 32 connections"
        finally:
            for c in connections:
                c.close()
        time.sleep(0.2)


def test_a_worker_that_dies_is_replaced(two_workers: Served) -> None:
    before = _wait_for_workers(two_workers, 2)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    with httpx.Client(base_url=two_workers.url) as http:
        deadline = time.monotonic() + 60
        while True:  # the other worker answers meanwhile
            assert http.get("/healthz").status_code == 200
            after = _workers(two_workers)
            if len(after) == 2 and victim not in after:
                break
            assert time.monotonic() < deadline, f"no worker in place of {victim}: {after}"
            time.sleep(0.1)


def test_a_stop_stops_every_worker(two_workers: Served) -> None:
    workers = list(_wait_for_workers(two_workers, 2))
    output = two_workers.stop()  # SIGTERM to the supervisor
    assert two_workers.process.returncode == 0, output
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # reaped by the supervisor: gone, not a zombie
    assert _tcp(two_workers.port) == [] or all(s != "0A" for s, _ in _tcp(two_workers.port))


def test_an_address_in_use_is_refused_at_once(tmp_path: Path) -> None:
    serve = [OVERTURE, "serve", "--role", "runtime", "--database", str(tmp_path / "o.db")]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*serve, "--workers", "2", "--port", str(port)],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 3
    assert f"cannot serve on 127.0.0.1:{port}" in result.stderr
    assert "Address already in use" in result.stderr
