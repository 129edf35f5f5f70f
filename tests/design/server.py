"""A real design API server for tests: uvicorn on a free port, in a thread of the test
process, so clients talk real HTTP over TCP to it concurrently."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import uvicorn

from overture.design.app import create_app
from overture.store import Database


@contextlib.contextmanager
def live_server(db: Database) -> Iterator[str]:
    """Serve the design API on 127.0.0.1 and yield its base URL; stop it afterwards."""
    config = uvicorn.Config(
        create_app(db), host="127.0.0.1", port=0, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="design-api", daemon=True)
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
