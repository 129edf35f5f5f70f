"""The native runtime API (`/v1`): the hot routes on the fast path (fastpath.py), the
others on plain Starlette routes.

The hot path reads the body as bytes, decodes and validates it with msgspec into typed
structs, decides, and encodes the answer with msgspec: no per-request validation layer in
Python. Errors are RFC 9457 problem+json with a `detail` that says what to change.

    POST   /v1/decisions                      offers for one or more placements
    POST   /v1/events                         one event, or {"events": [...]}
    POST   /v1/sessions                       start a session
    GET    /v1/sessions/{id}                  what the session holds
    PUT    /v1/sessions/{id}/audience         switch audience / identify the visitor
    DELETE /v1/sessions/{id}                  end it
    GET    /v1/profiles/{id}/history          contact and response history (support desks)
    GET    /runtime/openapi.json              this API, described
    GET    /metrics  /healthz  /readyz
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from overture.engine import RequestError
from overture.history.failures import DependencyDown, database_down, redis_down
from overture.history.recorder import RecorderClosed
from overture.history.timeline import profile_history
from overture.runtime.fastpath import Answer, BodyTooLarge, Call, Disconnected, Handler
from overture.runtime.keys import KeyRefused, key_from_headers
from overture.runtime.node import RuntimeNode
from overture.runtime.schemas import AudienceIn, DecisionIn, EventIn, EventsIn, SessionIn
from overture.runtime.service import NotServed, SessionNotFound, Unavailable
from overture.runtime.sessions import Session

log = logging.getLogger("overture.runtime")
_encode = msgspec.json.Encoder().encode
_decision = msgspec.json.Decoder(DecisionIn).decode
_json_object = msgspec.json.Decoder(dict[str, Any]).decode
_session = msgspec.json.Decoder(SessionIn).decode
_audience = msgspec.json.Decoder(AudienceIn).decode
_RETRY = (("Retry-After", "1"),)


class Problem(Exception):
    def __init__(self, status: int, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra


def problem(status: int, title: str, detail: str, **extra: Any) -> Answer:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return Answer(
        status, _encode(body), "application/problem+json", _RETRY if status == 503 else ()
    )


def unavailable(exc: Exception) -> Answer:
    """503 with Retry-After: the node cannot answer now (docs/runtime.md, "Failures")."""
    retry = getattr(exc, "retry_after", 1)
    body = {"type": "about:blank", "title": "Unavailable", "status": 503, "detail": str(exc)}
    return Answer(503, _encode(body), "application/problem+json", (("Retry-After", str(retry)),))


def unexpected(exc: Exception, endpoint: str) -> Answer:
    """An error nothing else caught: logged; a dependency that stopped answering is a 503
    (retry), anything else a 500. Either way the detail is for people: no exception names."""
    if database_down(exc) or redis_down(exc):
        log.error("runtime %s: a dependency failed: %s", endpoint, exc)
        return unavailable(
            DependencyDown(
                "a service this node depends on (its database or Redis) is not answering; "
                "the request may not have been completed; retry in a few seconds"
            )
        )
    log.exception("runtime %s failed", endpoint)
    return problem(
        500,
        "Server error",
        "an unexpected error stopped this request (the node logged it); it may not have been "
        "completed; retry, and if it happens again tell the runtime's operators",
    )


def json(data: Any, status: int = 200) -> Answer:
    return Answer(status, _encode(data))


def response(answer: Answer) -> Response:
    """An answer as a Starlette Response (for the routes Starlette serves)."""
    return Response(answer.body, answer.status, dict(answer.headers), answer.media_type)


def starlette_route(handler: Callable[[Any], Awaitable[Answer]]) -> Callable[..., Any]:
    """A handler written for the fast path (it takes a Call), as a Starlette endpoint."""

    async def route(request: Request) -> Response:
        return response(await handler(Call(request.headers, request.body)))

    return route


async def read_body(request: Request) -> bytes:
    return await Call(request.headers, request.body).body()


def decode(decoder: Callable[[bytes], Any], body: bytes) -> Any:
    try:
        value = decoder(body)
    except msgspec.ValidationError as exc:
        raise Problem(422, "Invalid request", str(exc)) from None
    except msgspec.DecodeError as exc:
        raise Problem(400, "Malformed JSON", f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise Problem(400, "Malformed JSON", "the body is nested too deeply") from None
    except UnicodeDecodeError:  # msgspec: bytes of a string that are not UTF-8
        raise Problem(400, "Malformed JSON", not_utf8(body)) from None
    if b"\\u0000" in body:  # JSON can only carry a NUL escaped; rare, so checked closely here
        where = nul_in(msgspec.json.decode(body), "$")
        if where is not None:
            raise Problem(
                422,
                "Invalid request",
                f"text may not contain the NUL character (\\u0000) - at `{where}`",
            )
    return value


def not_utf8(body: bytes) -> str:
    """What is wrong with a body whose bytes are not UTF-8 (msgspec raises UnicodeDecodeError,
    not a DecodeError, for such bytes inside a string): where, and what to send instead."""
    try:
        body.decode()
    except UnicodeDecodeError as exc:
        return (
            f"the body is not valid UTF-8 (byte 0x{body[exc.start]:02x} at offset {exc.start}): "
            "send JSON encoded as UTF-8"
        )
    return "the body is not valid UTF-8; send JSON encoded as UTF-8"


def nul_in(value: Any, where: str) -> str | None:
    """Where `value` holds a NUL character (PostgreSQL text cannot), as a JSON path."""
    if isinstance(value, str):
        return where if "\x00" in value else None
    if isinstance(value, dict):
        for k, v in value.items():
            found = nul_in(k, f"{where} (a key)") or nul_in(v, f"{where}.{k}")
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = nul_in(v, f"{where}[{i}]")
            if found is not None:
                return found
    return None


class _Handlers:
    """The runtime's API handlers for one node. Each takes the request (a fast-path Call for
    the hot routes, a Starlette Request for the others) and the environment its key opens."""

    def __init__(self, node: RuntimeNode) -> None:
        self.node = node
        self.runtime = node.runtime
        self.metrics = node.metrics

    def endpoint(
        self, name: str, handler: Callable[[Any, str], Awaitable[Answer]]
    ) -> Callable[[Any], Awaitable[Answer]]:
        """Authenticate, time, and turn every failure into a problem+json answer."""
        observe = self.metrics.latency.labels(name).observe
        errors = self.metrics.errors
        keys = self.node.keys

        async def run(request: Any) -> Answer:
            started = time.perf_counter()
            try:
                environment = await keys.environment(key_from_headers(request.headers))
                params = getattr(request, "path_params", None)
                if params and any("\x00" in v for v in params.values()):
                    raise Problem(400, "Invalid path", "the path holds a NUL character (%00)")
                answer = await handler(request, environment)
            except Problem as exc:
                answer = problem(exc.status, exc.title, exc.detail, **exc.extra)
            except BodyTooLarge as exc:
                answer = problem(413, "Body too large", str(exc))
            except KeyRefused as exc:
                answer = problem(401, "Not authenticated", str(exc))
            except RequestError as exc:
                answer = problem(422, "Invalid request", str(exc), errors=exc.problems)
            except NotServed as exc:
                answer = problem(421, "Environment not served here", str(exc))
            except SessionNotFound as exc:
                answer = problem(404, "No such session", str(exc))
            except (Unavailable, RecorderClosed) as exc:
                answer = unavailable(exc)
            except Disconnected:
                raise  # nobody to answer
            except Exception as exc:  # answered, logged, and counted: never a bare 500
                answer = unexpected(exc, name)
            if answer.status >= 400:
                errors.labels(name, str(answer.status)).inc()
            observe(time.perf_counter() - started)
            return answer

        return run

    async def decisions(self, call: Call, env: str) -> Answer:
        ask: DecisionIn = decode(_decision, await call.body())
        runtime = self.runtime
        session = await runtime.session(env, ask.session_id) if ask.session_id else None
        return json(await runtime.decide(env, ask, session))

    async def events(self, call: Call, env: str) -> Answer:
        raw = decode(_json_object, await call.body())
        try:
            items = (
                msgspec.convert(raw, EventsIn).events
                if "events" in raw
                else [msgspec.convert(raw, EventIn)]
            )
        except msgspec.ValidationError as exc:
            raise Problem(422, "Invalid request", str(exc)) from None
        for i, event in enumerate(items):
            _check_time(event, f"$.events[{i}].at" if "events" in raw else "$.at")
        ids = {e.session_id for e in items if e.session_id}
        session = None
        if len(ids) == 1:
            session = await self.runtime.session(env, ids.pop())
        elif len(ids) > 1:
            raise Problem(
                422, "Invalid request", "post the events of one session at a time (session_id)"
            )
        result = await self.runtime.post_events(env, items, session)
        if result["rejected"] and not (result["stored"] or result["duplicates"]):
            return problem(
                422,
                "No event stored",
                "; ".join(r["error"] for r in result["results"]),
                **result,
            )
        return json(result)

    async def start_session(self, request: Request, env: str) -> Answer:
        body: SessionIn = decode(_session, await read_body(request))
        return json(_session_view(await self.runtime.start_session(env, body)), 201)

    async def session_by_id(self, request: Request, env: str) -> Answer:
        # One route for both methods, so that a 405 lists them all in its Allow header.
        session_id = request.path_params["id"]
        if request.method == "DELETE":
            if not await self.runtime.end_session(env, session_id):
                raise SessionNotFound(f"no session {session_id!r} in {env!r} (ended or expired)")
            return Answer(204, b"")
        return json(_session_view(await self.runtime.session(env, session_id)))

    async def set_audience(self, request: Request, env: str) -> Answer:
        body: AudienceIn = decode(_audience, await read_body(request))
        session = await self.runtime.set_audience(env, request.path_params["id"], body)
        return json(_session_view(session))

    async def history(self, request: Request, env: str) -> Answer:
        unknown = set(request.query_params) - {"audience", "limit"}
        if unknown:
            raise Problem(
                400,
                "Unknown parameter",
                f"unknown query parameter(s): {', '.join(sorted(unknown))}",
            )
        if any("\x00" in v for v in request.query_params.values()):
            raise Problem(400, "Invalid query", "a query parameter holds a NUL character (%00)")
        limit_text = request.query_params.get("limit", "100")
        if not limit_text.isdecimal() or not 1 <= int(limit_text) <= 1000:
            raise Problem(400, "Invalid limit", "limit is a whole number from 1 to 1000")
        self.runtime.live(env)
        data = await asyncio.to_thread(
            profile_history,
            self.node.db,
            env,
            request.query_params.get("audience"),
            request.path_params["id"],
            int(limit_text),
        )
        return json(data)


def hot(node: RuntimeNode) -> dict[str, Handler]:
    """The hot routes, for the fast path (fastpath.py): POST only."""
    h = _Handlers(node)
    return {
        "/v1/decisions": h.endpoint("decisions", h.decisions),
        "/v1/events": h.endpoint("events", h.events),
    }


def routes(node: RuntimeNode) -> list[BaseRoute]:
    """The other routes, for Starlette (the hot ones: `hot`, registered by app.py)."""
    h = _Handlers(node)

    def route(path: str, name: str, handler: Any, methods: list[str]) -> Route:
        run = h.endpoint(name, handler)

        async def endpoint(request: Request) -> Response:
            return response(await run(request))

        return Route(path, endpoint, methods=methods)

    return [
        route("/v1/sessions", "sessions", h.start_session, ["POST"]),
        route("/v1/sessions/{id}", "sessions", h.session_by_id, ["GET", "DELETE"]),
        route("/v1/sessions/{id}/audience", "sessions", h.set_audience, ["PUT"]),
        route("/v1/profiles/{id}/history", "history", h.history, ["GET"]),
    ]


def _check_time(event: EventIn, where: str) -> None:
    """An `at` with a zone must be a UTC time too (year 1 at +14:00 is not)."""
    if event.at is not None and event.at.tzinfo is not None:
        try:
            event.at.astimezone(dt.UTC)
        except OverflowError:
            raise Problem(
                422,
                "Invalid request",
                f"time {event.at.isoformat()} is out of range - at `{where}`",
            ) from None


def _session_view(session: Session) -> dict[str, Any]:
    view: dict[str, Any] = {
        "session_id": session.id,
        "environment": session.environment,
        "audience": session.audience,
        "profile_id": session.profile_id,
        "context": session.context,
        "responded": session.responded,
        "last": session.last,
    }
    if session.warnings:
        view["warnings"] = session.warnings
    return view
