"""The framework's ceiling for the runtime benchmark: a Starlette route that decodes a JSON
body with msgspec and answers a small JSON object, nothing else (no auth, no decision).
Served by uvicorn exactly as the runtime is: `uvicorn --factory benchmarks.ceiling:create`."""

from __future__ import annotations

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
