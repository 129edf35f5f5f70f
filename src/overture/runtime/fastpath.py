"""The hot routes served straight from ASGI: `POST /v1/decisions`, `POST /v1/events` and
Interact's `POST /interact/servlet/RestServlet`.

Under Starlette, a request passes its error middleware, its exception middleware, the router
(which tries every route's pattern in turn) and the route's request/response adapter, each
wrapping `send` once more, and builds a Request and a Response object on the way: about a
fifth of a decision's CPU in a profile of `python -m benchmarks.runtime` (py-spy; docs/runtime.md,
"Speed"). These three routes are matched here by exact path and method, read their body
from `receive` and write their answer with two `send` calls. Everything else, and these paths
with another method (405 with Allow) or another spelling, goes on to the Starlette app, whose
routes for these paths call the same handlers: both ways answer alike, and the tests and
the fuzzers go through this one (create_app returns it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple

from starlette.types import Receive, Scope, Send

MAX_BODY = 1 << 20


class Answer(NamedTuple):
    """What a handler answers: sent by the fast path as is, or as a Starlette Response."""

    status: int
    body: bytes
    media_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


class BodyTooLarge(Exception):
    def __init__(self) -> None:
        super().__init__(f"send at most {MAX_BODY} bytes in one request")


class Disconnected(Exception):
    """The client went away before sending its whole body: there is nobody to answer."""


class Call:
    """A request as the hot handlers see it: headers by lower-case name, and the body."""

    __slots__ = ("_read", "headers")

    def __init__(self, headers: Mapping[str, str], read: Callable[[], Awaitable[bytes]]):
        self.headers = headers
        self._read = read

    async def body(self) -> bytes:
        """The body (at most MAX_BODY bytes, else BodyTooLarge)."""
        size = self.headers.get("content-length")
        if size is not None and size.isdecimal() and int(size) > MAX_BODY:
            raise BodyTooLarge
        body = await self._read()
        if len(body) > MAX_BODY:
            raise BodyTooLarge
        return body


Handler = Callable[[Call], Awaitable[Answer]]


class FastPath:
    """ASGI: the hot routes by exact path, the rest to `app` (a Starlette app)."""

    def __init__(self, app: Any, routes: Mapping[str, Handler]) -> None:
        self.app = app
        self.routes = dict(routes)

    @property
    def state(self) -> Any:
        return self.app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path, root = scope["path"], scope.get("root_path", "")
            if root and path.startswith(root):  # as Starlette routes it (--root-path)
                path = path[len(root) :]
            handler = self.routes.get(path)
            if handler is not None:
                await _serve(handler, scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _serve(handler: Handler, scope: Scope, receive: Receive, send: Send) -> None:
    headers: dict[str, str] = {}
    for k, v in scope["headers"]:  # a repeated header: the first one, as Starlette reads it
        headers.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))

    async def read() -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise Disconnected
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > MAX_BODY:
                    raise BodyTooLarge
                chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    try:
        answer = await handler(Call(headers, read))
    except Disconnected:
        return
    await send(
        {
            "type": "http.response.start",
            "status": answer.status,
            "headers": [
                (b"content-type", answer.media_type.encode()),
                (b"content-length", str(len(answer.body)).encode()),
                *((k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers),
            ],
        }
    )
    await send({"type": "http.response.body", "body": answer.body})
