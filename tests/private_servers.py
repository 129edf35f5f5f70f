"""PostgreSQL and Redis servers of a test's own, for the tests that crash, kill, restart or
empty them (tests/runtime/test_failures.py): never the shared ones the other tests use.

Each starts on a free port in a temporary folder and is removed afterwards. PostgreSQL's
`initdb` and `pg_ctl` refuse to run as root, so as root they run as the `postgres` user
(runuser), in a folder that user owns. A test skips, saying why, when the server programs
are not installed (apt-get install postgresql redis-server).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    if not versions:
        pytest.skip(
            "PostgreSQL's server programs (initdb, pg_ctl) are not installed, and this test "
            "crashes a PostgreSQL of its own: apt-get install postgresql"
        )
    return Path(versions[-1]).parent


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (see the module's doc)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.bin = _pg_bin()
        self.port = free_port()
        self.data = folder / "data"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(
            [*self._as, str(self.bin / program), *args],
            capture_output=True,
            text=True,
            cwd=self.folder,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            log = self.folder / "log"
            raise AssertionError(
                f"{program} failed: {done.stdout}{done.stderr}"
                + (log.read_text() if log.exists() else "")
            )

    def init(self) -> None:
        options = "-U postgres --auth=trust --no-sync -E UTF8 --locale=C"
        self._run("initdb", "-D", str(self.data), *options.split())

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
            # a crash here is the server's, not the machine's: the OS keeps what it wrote
            "-c fsync=off -c full_page_writes=off"
        )
        log = str(self.folder / "log")
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "-t", "60", "start"
        )
        with psycopg.connect(self.url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")

    def crash(self) -> None:
        """Stop it as a crash does: no checkpoint, every connection cut; it recovers from
        its write-ahead log when started again."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    _pg_bin()  # skip early, saying why
    folder = Path(tempfile.mkdtemp(prefix="overture-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    server = PrivatePostgres(folder)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


class PrivateRedis:
    """A Redis of the test's own, without persistence: started again, it is empty."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        program = shutil.which("redis-server")
        assert program is not None
        options = f"--port {self.port} --bind 127.0.0.1 --appendonly no --dir {self.folder}"
        self.process = subprocess.Popen(
            [program, *options.split(), "--save", ""],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    assert time.monotonic() < deadline, "redis-server did not start"
                    time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: it loses everything (no persistence)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=20)
            self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip(
            "redis-server is not installed, and this test kills a Redis of its own: "
            "apt-get install redis-server"
        )
    folder = Path(tempfile.mkdtemp(prefix="overture-redis-"))
    server = PrivateRedis(folder)
    try:
        server.start()
        yield server
    finally:
        server.kill()
        shutil.rmtree(folder, ignore_errors=True)
