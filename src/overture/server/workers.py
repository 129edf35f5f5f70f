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
on (port 0 picks one port for all the workers), starts the workers, starts a new one in
place of one that dies (waiting longer each time one dies young, up to 5 s), and stops
them all on SIGINT or SIGTERM: each worker then finishes its requests and writes what its
runtime accepted, as a single server does, however long that takes. SIGHUP restarts the
workers one after the other, SIGTTIN adds one and SIGTTOU stops one (as uvicorn's
supervisor does). A worker that fails to start (its application or its startup raised)
stops the whole server with exit status 3: starting it again would fail again.

SO_REUSEPORT lets any socket of the same user that sets it join the address, so before
binding, the supervisor checks that no socket at all holds it (a second `overture serve`
on the same port is refused, as uvicorn refuses it); and each worker asks the kernel for
SIGTERM when the supervisor dies (PR_SET_PDEATHSIG), so that a supervisor killed with
SIGKILL leaves no worker serving behind it. What the kernel's hashing trades: a connection
goes to its worker however busy that worker is, and the connections waiting in the queue
of a worker that dies are reset.

Elsewhere uvicorn's supervisor is used: macOS and the BSDs accept SO_REUSEPORT but do not
spread connections over the sockets.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
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
YOUNG_SECONDS = 10.0  # a worker that dies younger than this is restarted after a pause
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def run(app: str, *, host: str, port: int, workers: int, **options: Any) -> None:
    """Serve `app` (an import string, as uvicorn takes it) with `workers` processes."""
    if workers == 1 or not SPREADS:
        uvicorn.run(app, host=host, port=port, workers=workers, **options)
        return
    try:
        if port != 0:
            _socket(host, port, reuse_port=False).close()  # nobody holds it, not even
            # a socket that set SO_REUSEPORT (which the next bind would join)
        held = _socket(host, port)
    except OSError as exc:
        print(f"cannot serve on {host}:{port}: {exc}", file=sys.stderr)
        sys.exit(STARTUP_FAILURE)
    port = held.getsockname()[1]
    with held:
        sys.exit(_Supervisor(app, host, port, workers, options).run())


def _socket(host: str, port: int, *, reuse_port: bool = True) -> socket.socket:
    """A socket bound to the address beside the workers' (uvicorn's reading of the host)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _work(app: str, host: str, port: int, options: dict[str, Any], supervisor: int) -> None:
    """A worker process: uvicorn serving `app` on a listening socket of its own, until
    told to stop or its supervisor is gone."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != supervisor:  # it died before the request was made
        return
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, **options))
    try:
        server.run(sockets=[_socket(host, port)])
    except KeyboardInterrupt:  # uvicorn raises again the Ctrl+C it has handled
        return
    except BaseException:
        if server.started:
            raise
        log.exception("the worker could not start")
        sys.exit(STARTUP_FAILURE)
    if not server.started:
        sys.exit(STARTUP_FAILURE)


class _Supervisor:
    def __init__(
        self, app: str, host: str, port: int, workers: int, options: dict[str, Any]
    ) -> None:
        self.args = (app, host, port, options, os.getpid())
        self.slots: list[tuple[BaseProcess, float]] = []
        self.workers = workers
        self.stopping = False
        self.signals: list[int] = []  # HUP, TTIN, TTOU received, handled by the loop
        self.pause = 0.0  # before starting a worker in place of one that died young
        self.context = multiprocessing.get_context("spawn")

    def run(self) -> int:
        """Serve until a signal to stop (0) or a worker fails to start (its status)."""
        handled = {
            signal.SIGINT: self._stop,
            signal.SIGTERM: self._stop,
            signal.SIGHUP: self._later,
            signal.SIGTTIN: self._later,
            signal.SIGTTOU: self._later,
        }
        previous = {s: signal.signal(s, handler) for s, handler in handled.items()}
        status = 0
        try:
            self.slots = [self._start() for _ in range(self.workers)]
            while not self.stopping and status == 0:
                wait([p.sentinel for p, _ in self.slots], timeout=0.5)
                while self.signals and not self.stopping:
                    self._on(self.signals.pop(0))
                status = self._replace_the_dead()
        finally:
            self._stop_all([p for p, _ in self.slots])
            for s, handler in previous.items():
                signal.signal(s, handler)
        return status

    def _replace_the_dead(self) -> int:
        for i, (process, started) in enumerate(self.slots):
            if process.is_alive() or self.stopping:
                continue
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                log.error("a worker could not start: stopping")
                return STARTUP_FAILURE
            young = time.monotonic() - started < YOUNG_SECONDS
            self.pause = min(max(0.1, self.pause * 2), 5.0) if young else 0.0
            log.warning(
                "worker %s ended (status %s): starting another%s",
                process.pid,
                process.exitcode,
                f" in {self.pause:.1f} s" if self.pause else "",
            )
            time.sleep(self.pause)
            if self.stopping:  # told to stop during the pause
                break
            self.slots[i] = self._start()
        return 0

    def _on(self, received: int) -> None:
        if received == signal.SIGHUP:  # restart them one at a time: the others serve
            for i, (process, _started) in enumerate(self.slots):
                self._stop_all([process])
                if self.stopping:  # told to stop meanwhile: the dead one stays dead
                    break
                self.slots[i] = self._start()
        elif received == signal.SIGTTIN:
            self.slots.append(self._start())
        elif received == signal.SIGTTOU and len(self.slots) > 1:
            process, _started = self.slots.pop()
            self._stop_all([process])

    def _start(self) -> tuple[BaseProcess, float]:
        process = self.context.Process(target=_work, args=self.args, daemon=False)
        process.start()
        return process, time.monotonic()

    def _stop(self, _signal: int, _frame: Any) -> None:
        self.stopping = True

    def _later(self, received: int, _frame: Any) -> None:
        self.signals.append(received)

    @staticmethod
    def _stop_all(processes: list[BaseProcess]) -> None:
        """SIGTERM to each: uvicorn finishes its requests and the node writes what it
        accepted; waited for however long that takes."""
        running = [p for p in processes if p.is_alive()]
        for process in running:
            process.terminate()
        for process in running:
            process.join()
