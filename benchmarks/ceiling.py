"""The framework's ceiling for the runtime benchmark: a Starlette route that decodes a JSON
body with msgspec and answers a small JSON object, nothing else (no auth, no decision).
Served exactly as the runtime is (uvicorn with the runtime's HTTP protocol, its workers
supervised by `overture.server.workers`):

    python -m benchmarks.ceiling --port 8000 [--workers 2]
"""

from __future__ import annotations

import argparse
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_decode = msgspec.json.Decoder(dict[str, Any]).decode
_encode = msgspec.json.Encoder().encode


async def echo(request: Request) -> Response:
    body = _decode(await request.body())
    return Response(_encode({"ok": True, "keys": len(body)}), media_type="application/json")


def create() -> Starlette:
    return Starlette(routes=[Route("/v1/decisions", echo, methods=["POST"])])


def main() -> None:
    from overture.server.workers import run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    options = parser.parse_args()
    run(
        "benchmarks.ceiling:create",
        factory=True,
        host="127.0.0.1",
        port=options.port,
        workers=options.workers,
        log_level="warning",
        access_log=False,
        http="overture.server.protocol:Protocol",
    )


if __name__ == "__main__":
    main()
