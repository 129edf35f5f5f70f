"""`overture serve --workers 2` (server/workers.py): connections are spread over the
workers, a worker that dies is replaced, a stop (SIGTERM, or Ctrl+C to the terminal's
process group) stops them all, a supervisor killed takes its workers with it, SIGHUP,
SIGTTIN and SIGTTOU restart, add and remove workers, a taken port is refused (even by a
socket that would share it), a worker that cannot start stops the server with status 3.

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
    assert all(state != "0A" for state, _inode in _tcp(two_workers.port))  # none listens


@pytest.mark.parametrize("shared", [False, True])
def test_an_address_in_use_is_refused_at_once(tmp_path: Path, shared: bool) -> None:
    # a socket that set SO_REUSEPORT (another `overture serve` on the port, or workers a
    # killed supervisor left) would have let the workers join it and share its port
    serve = [OVERTURE, "serve", "--role", "runtime", "--database", str(tmp_path / "o.db")]
    with socket.socket() as taken:
        if shared:
            taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
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


def _gone(pids: list[int], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for pid in pids:
            try:
                os.kill(pid, 0)
                alive.append(pid)
            except ProcessLookupError:
                pass
        if not alive:
            return True
        time.sleep(0.1)
    return False


def test_workers_stop_when_their_supervisor_is_killed(two_workers: Served) -> None:
    workers = list(_wait_for_workers(two_workers, 2))
    two_workers.process.kill()  # SIGKILL: no chance to stop them itself
    two_workers.process.wait(timeout=30)
    assert _gone(workers), "workers left serving without their supervisor"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{two_workers.url}/healthz", timeout=2)


def test_hup_restarts_the_workers_and_ttin_ttou_add_and_remove_one(two_workers: Served) -> None:
    before = set(_wait_for_workers(two_workers, 2))
    two_workers.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 60
    while not (len(after := _workers(two_workers)) == 2 and not before & set(after)):
        assert time.monotonic() < deadline, f"not restarted: {before} then {_workers(two_workers)}"
        time.sleep(0.1)
    two_workers.process.send_signal(signal.SIGTTIN)
    _wait_for_workers(two_workers, 3)
    two_workers.process.send_signal(signal.SIGTTOU)
    _wait_for_workers(two_workers, 2)
    assert httpx.get(f"{two_workers.url}/healthz").status_code == 200


def test_ctrl_c_in_a_terminal_stops_everything_quietly(tmp_path: Path) -> None:
    # the terminal sends SIGINT to the whole process group: the workers and the supervisor
    served = Served(
        ["--role", "runtime", "--database", str(tmp_path / "o.db"), "--workers", "2"],
        tmp_path,
        new_session=True,
    )
    served.wait_ready()
    workers = list(_wait_for_workers(served, 2))
    os.killpg(served.process.pid, signal.SIGINT)
    output, _ = served.process.communicate(timeout=60)
    assert served.process.returncode == 0, output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert _gone(workers)


def test_a_worker_that_cannot_start_stops_the_server_with_status_3(tmp_path: Path) -> None:
    serve = [OVERTURE, "serve", "--role", "runtime", "--database", str(tmp_path / "o.db")]
    started = time.monotonic()
    result = subprocess.run(  # a Redis URL the client refuses: the app cannot be made
        [*serve, "--workers", "2", "--port", "0", "--redis", "bogus://x"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert time.monotonic() - started < 60
    assert "a worker could not start: stopping" in result.stderr
