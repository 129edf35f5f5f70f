"""`overture serve --workers N`: worker processes that share the connections between them.

uvicorn's own supervisor binds one listening socket and hands it to every worker. A
worker's event loop, woken by a connection, accepts every connection then waiting, so a
burst of connections (a load balancer opening its pool, a load test's 32) lands mostly on
whichever worker woke first, and keep-alive connections stay where they landed. Measured
with two workers, eight bursts of 32 connections were shared 32/0, 20/12, 17/15, 30/2,
18/14, 17/15, 16/16 and 29/3: one burst in three left the second worker nearly idle, and
the benchmark's two-worker runs then served as one (0.98 busy cores instead of 1.78).
libuv's UV_TCP_SINGLE_ACCEPT did not change that (32/0, 29/3, …).

So on Linux each worker binds a listening socket of its own to the address, with
SO_REUSEPORT, and the kernel hands each new connection to one of them by a hash of its
addresses, whatever the workers are doing at that moment (measured: 12 to 20 of 32 each).
This process, the supervisor, holds the address with a socket it binds but never listens
on (an address another program holds is refused before any worker starts, and port 0
picks one port for all of them), starts the workers, starts a new one in place of one that
dies, and stops them all on SIGINT or SIGTERM: each worker then finishes its requests and
writes what its runtime accepted, as a single server does. A worker that fails to start
(uvicorn's exit status 3: the application's startup failed) stops the whole server with
that status: starting it again would fail again.

Elsewhere uvicorn's supervisor is used: macOS and the BSDs accept SO_REUSEPORT but do not
spread connections over the sockets.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import sys
import time
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

log = logging.getLogger("overture.server")

SPREADS = sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")
STOP_SECONDS = 60.0  # how long a stopping worker may take to drain before it is killed


def run(app: str, *, host: str, port: int, workers: int, **options: Any) -> None:
    """Serve `app` (an import string, as uvicorn takes it) with `workers` processes."""
    if workers == 1 or not SPREADS:
        uvicorn.run(app, host=host, port=port, workers=workers, **options)
        return
    try:
        held = _socket(host, port)
    except OSError as exc:
        print(f"cannot serve on {host}:{port}: {exc}", file=sys.stderr)
        sys.exit(STARTUP_FAILURE)
    port = held.getsockname()[1]
    with held:
        sys.exit(_Supervisor(app, host, port, workers, options).run())


def _socket(host: str, port: int) -> socket.socket:
    """A socket bound to the address beside the workers' (uvicorn's reading of the host)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _work(app: str, host: str, port: int, options: dict[str, Any]) -> None:
    """A worker process: uvicorn serving `app` on a listening socket of its own."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, **options))
    server.run(sockets=[_socket(host, port)])
    if not server.started:
        sys.exit(STARTUP_FAILURE)


class _Supervisor:
    def __init__(
        self, app: str, host: str, port: int, workers: int, options: dict[str, Any]
    ) -> None:
        self.args = (app, host, port, options)
        self.slots: list[BaseProcess | None] = [None] * workers
        self.stopping = False
        self.context = multiprocessing.get_context("spawn")

    def run(self) -> int:
        """Serve until a signal to stop (0) or a worker fails to start (its status)."""
        previous = {s: signal.signal(s, self._stop) for s in (signal.SIGINT, signal.SIGTERM)}
        status = 0
        try:
            for i in range(len(self.slots)):
                self._start(i)
            while not self.stopping:
                running = [p for p in self.slots if p is not None]
                wait([p.sentinel for p in running], timeout=0.5)
                for i, process in enumerate(self.slots):
                    if process is None or process.is_alive() or self.stopping:
                        continue
                    if process.exitcode == STARTUP_FAILURE:
                        log.error("a worker could not start: stopping")
                        self.stopping, status = True, STARTUP_FAILURE
                        break
                    log.warning(
                        "worker %s ended (status %s): starting another",
                        process.pid,
                        process.exitcode,
                    )
                    time.sleep(0.1)  # a worker that dies at once is not restarted in a tight loop
                    self._start(i)
        finally:
            self._stop_all()
            for s, handler in previous.items():
                signal.signal(s, handler)
        return status

    def _start(self, slot: int) -> None:
        process = self.context.Process(target=_work, args=self.args, daemon=False)
        process.start()
        self.slots[slot] = process

    def _stop(self, _signal: int, _frame: Any) -> None:
        self.stopping = True

    def _stop_all(self) -> None:
        running = [p for p in self.slots if p is not None and p.is_alive()]
        for process in running:
            process.terminate()  # SIGTERM: uvicorn finishes its requests, the node drains
        deadline = time.monotonic() + STOP_SECONDS
        for process in running:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("worker %s did not stop in %.0f s: killed", process.pid, STOP_SECONDS)
                process.kill()
                process.join()
