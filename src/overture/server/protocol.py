"""Slow clients: how long `overture serve` waits for a request's headers and its body.

uvicorn bounds neither. Its keep-alive timer runs only between two requests, and the first
byte of the next one stops it; nothing runs before the first request. So a client that
connects and sends nothing, or sends its headers a byte a second, holds the connection for
as long as it likes, and one that sends its body a byte a second holds the connection and
the task waiting in `receive()` as well. A few hundred of those and the server has no
connections left for anyone else.

`Protocol` is uvicorn's own HTTP protocol (httptools' when it is installed, as uvicorn's
"auto" chooses, else h11's) with two deadlines added, checked by timers of the event loop:

- **headers**: a request's headers must be complete `header_seconds` after the connection
  opened, or after the first byte of a request that followed another one (before that byte,
  uvicorn's keep-alive timeout applies). Late: the connection is closed, with a `408` when
  part of a request had come.
- **body**: a body must be complete `body_seconds` after its headers, plus one second for
  every `body_rate` bytes received, so a large upload over a slow but honest link goes on
  while a trickle is cut. Late: the application's `receive()` says `http.disconnect` (as
  when the client goes away, so what it answers is dropped), the client gets `408` when no
  answer had started, and the connection is closed.

A request that arrives in one piece, as nearly all do, arms no timer at all.

Why in the protocol and not in an ASGI middleware: the header timeout can only be here,
since no application is called before the headers are complete; and the body timeout is
here too because only the protocol sees bytes arrive (a middleware sees them only when the
application asks, so it cannot tell a slow client from a slow application, nor count the
rate), can close the connection itself, and costs nothing for the routes that never wait
(the runtime's fast path is served before any middleware). One mechanism, in one place, for
the runtime, the design API and the console alike.

The connection limit is uvicorn's own (`limit_concurrency`, `max_connections` here): past
it, a request is answered `503 Service Unavailable` at once, counting open connections
(idle ones included) and running requests of one worker process.

The limits travel to each worker in the OVERTURE_SERVE variable (`client_limits`), as the
node's settings do (server/asgi.py); a subclass may set `limits` instead.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["ClientLimits", "GuardedH11", "Protocol", "limits_from_environment"]

VARIABLE = "OVERTURE_SERVE"  # as server/asgi.py (not imported: that builds the whole app)
logger = logging.getLogger("overture.server")


@dataclass(frozen=True)
class ClientLimits:
    """How long a client may take to send a request, and how many connections a worker
    process serves at once (`overture serve --header-timeout/--body-timeout/--body-rate/
    --max-connections`)."""

    header_seconds: float = 10.0
    body_seconds: float = 30.0
    body_rate: int = 64 * 1024  # bytes a second that earn a body one more second
    max_connections: int = 1000  # per worker process; uvicorn answers 503 past it

    def __post_init__(self) -> None:
        if self.header_seconds <= 0 or self.body_seconds <= 0:
            raise ValueError("the header and body timeouts are positive numbers of seconds")
        if self.body_rate < 1 or self.max_connections < 1:
            raise ValueError("the body rate and the connection limit are at least 1")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClientLimits:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def limits_from_environment() -> ClientLimits:
    """The limits `overture serve` set in OVERTURE_SERVE (the defaults without it)."""
    return _limits(os.environ.get(VARIABLE, ""))


@functools.lru_cache(maxsize=4)
def _limits(raw: str) -> ClientLimits:
    options = json.loads(raw) if raw else {}
    return ClientLimits.from_json(options.get("client_limits") or {})


def _answer_408(what: str) -> bytes:
    text = f"Request Timeout: the request's {what} came too slowly\n".encode()
    return (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(text), text)
    )


LATE_HEADERS = _answer_408("headers")
LATE_BODY = _answer_408("body")

if TYPE_CHECKING:  # what the mixin uses of uvicorn's protocols

    class _Base(asyncio.Protocol):
        transport: asyncio.Transport
        loop: asyncio.AbstractEventLoop
        cycle: Any
        flow: Any

        def on_response_complete(self) -> None: ...

else:
    _Base = object


class _Deadlines(_Base):
    """The two deadlines, mixed in before one of uvicorn's protocols (docstring above)."""

    limits: ClassVar[ClientLimits | None] = None  # None: limits_from_environment()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._limits = self.limits or limits_from_environment()
        self._partial = False  # bytes of a request whose headers are not complete yet
        self._body_cycle: Any = None  # the request whose body is awaited
        self._body_since = 0.0
        self._body_bytes = 0
        self._body_timer: asyncio.TimerHandle | None = None
        # nothing is sent yet: the first request's headers are due all the same
        self._headers_timer: asyncio.TimerHandle | None = self.loop.call_later(
            self._limits.header_seconds, self._headers_late
        )

    def data_received(self, data: bytes) -> None:
        if self._body_cycle is not None:
            self._body_bytes += len(data)
        super().data_received(data)
        self._watch(fed=True)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch(fed=False)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_headers()
        self._stop_body()
        super().connection_lost(exc)

    # -- the state after each event ----------------------------------------------------------
    def _watch(self, *, fed: bool) -> None:
        """Arm or stop the timers for what the connection waits for now (`fed`: after
        bytes came)."""
        transport = self.transport
        if transport.is_closing() or transport.get_protocol() is not self:  # closed, upgraded
            self._stop_headers()
            self._stop_body()
            return
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            # between requests: what came since the answer is the next request's start (or
            # the rest of a body the application did not read); uvicorn's keep-alive timer
            # runs until it comes
            self._stop_body()
            self._partial = self._partial or fed
            if self._partial and self._headers_timer is None:
                self._headers_timer = self.loop.call_later(
                    self._limits.header_seconds, self._headers_late
                )
            return
        # a request is in (its headers are complete)
        self._partial = False
        self._stop_headers()
        if cycle.more_body and not cycle.disconnected:
            if self._body_cycle is not cycle:
                self._stop_body()
                self._body_cycle, self._body_since, self._body_bytes = cycle, self.loop.time(), 0
                self._body_timer = self.loop.call_later(self._limits.body_seconds, self._body_late)
        else:
            self._stop_body()

    def _stop_headers(self) -> None:
        if self._headers_timer is not None:
            self._headers_timer.cancel()
            self._headers_timer = None

    def _stop_body(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        self._body_cycle = None

    # -- the deadlines -----------------------------------------------------------------------
    def _headers_late(self) -> None:
        self._headers_timer = None
        cycle = self.cycle
        if self.transport.is_closing() or (cycle is not None and not cycle.response_complete):
            return
        if self._partial:
            self.transport.write(LATE_HEADERS)
            logger.info("closed a connection whose request headers came too slowly")
        self.transport.close()

    def _body_late(self) -> None:
        self._body_timer = None
        cycle = self._body_cycle
        if (
            cycle is None
            or cycle is not self.cycle
            or not cycle.more_body
            or cycle.response_complete
            or self.transport.is_closing()
        ):
            self._body_cycle = None
            return
        now = self.loop.time()
        if self.flow.read_paused:  # the application is not reading: not the client's fault
            self._body_since, self._body_bytes = now, 0
        due = self._body_since + self._limits.body_seconds
        due += self._body_bytes / self._limits.body_rate
        if now < due:  # it has kept up the rate: more time
            self._body_timer = self.loop.call_at(due, self._body_late)
            return
        self._body_cycle = None
        if not cycle.response_started:
            self.transport.write(LATE_BODY)
        # the application's receive() now says http.disconnect, and what it sends is dropped
        cycle.disconnected = True
        cycle.message_event.set()
        logger.info("closed a connection whose request body came too slowly")
        self.transport.close()


class GuardedH11(_Deadlines, H11Protocol):
    """uvicorn's h11 protocol with the deadlines."""


Protocol: type[asyncio.Protocol]
try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools comes with uvicorn[standard]
    Protocol = GuardedH11
else:

    class GuardedHttpTools(_Deadlines, HttpToolsProtocol):
        """uvicorn's httptools protocol with the deadlines."""

    Protocol = GuardedHttpTools
