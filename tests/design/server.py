"""A real design API server for tests: uvicorn on a free port, in a thread of the test
process, so clients talk real HTTP over TCP to it concurrently."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

from overture.server import design_app
from overture.store import Database


@contextlib.contextmanager
def live_server(db: Database) -> Iterator[str]:
    """Serve the design API on 127.0.0.1 and yield its base URL; stop it afterwards."""
    with serve_app(design_app(db)) as url:
        yield url


@contextlib.contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Serve an ASGI app (lifespan included) on a free port; yield its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
