"""The native runtime API (`/v1`) on lean Starlette routes.

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
from overture.history.recorder import RecorderClosed
from overture.history.timeline import profile_history
from overture.runtime.keys import KeyRefused, key_from_headers
from overture.runtime.node import RuntimeNode
from overture.runtime.schemas import AudienceIn, DecisionIn, EventIn, EventsIn, SessionIn
from overture.runtime.service import NotServed, SessionNotFound, Unavailable
from overture.runtime.sessions import Session

log = logging.getLogger("overture.runtime")
MAX_BODY = 1 << 20
_encode = msgspec.json.Encoder().encode
_decision = msgspec.json.Decoder(DecisionIn).decode
_json_object = msgspec.json.Decoder(dict[str, Any]).decode
_session = msgspec.json.Decoder(SessionIn).decode
_audience = msgspec.json.Decoder(AudienceIn).decode

Handler = Callable[[Request, str], Awaitable[Response]]


class Problem(Exception):
    def __init__(self, status: int, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    headers = {"Retry-After": "1"} if status == 503 else None
    return Response(_encode(body), status, headers, media_type="application/problem+json")


def json(data: Any, status: int = 200) -> Response:
    return Response(_encode(data), status, media_type="application/json")


async def read_body(request: Request) -> bytes:
    size = request.headers.get("content-length")
    if size is not None and size.isdecimal() and int(size) > MAX_BODY:
        raise Problem(413, "Body too large", f"send at most {MAX_BODY} bytes in one request")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise Problem(413, "Body too large", f"send at most {MAX_BODY} bytes in one request")
    return body


def decode(decoder: Callable[[bytes], Any], body: bytes) -> Any:
    try:
        value = decoder(body)
    except msgspec.ValidationError as exc:
        raise Problem(422, "Invalid request", str(exc)) from None
    except msgspec.DecodeError as exc:
        raise Problem(400, "Malformed JSON", f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise Problem(400, "Malformed JSON", "the body is nested too deeply") from None
    if b"\\u0000" in body:  # JSON can only carry a NUL escaped; rare, so checked closely here
        where = nul_in(msgspec.json.decode(body), "$")
        if where is not None:
            raise Problem(
                422,
                "Invalid request",
                f"text may not contain the NUL character (\\u0000) - at `{where}`",
            )
    return value


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


def routes(node: RuntimeNode) -> list[BaseRoute]:
    runtime = node.runtime
    metrics = node.metrics

    def endpoint(name: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Authenticate, time, and turn every failure into a problem+json answer."""
        observe = metrics.latency.labels(name).observe

        async def run(request: Request) -> Response:
            started = time.perf_counter()
            try:
                environment = await node.keys.environment(key_from_headers(request.headers))
                if any("\x00" in v for v in request.path_params.values()):
                    raise Problem(400, "Invalid path", "the path holds a NUL character (%00)")
                response = await handler(request, environment)
            except Problem as exc:
                response = problem(exc.status, exc.title, exc.detail, **exc.extra)
            except KeyRefused as exc:
                response = problem(401, "Not authenticated", str(exc))
            except RequestError as exc:
                response = problem(422, "Invalid request", str(exc), errors=exc.problems)
            except NotServed as exc:
                response = problem(421, "Environment not served here", str(exc))
            except SessionNotFound as exc:
                response = problem(404, "No such session", str(exc))
            except (Unavailable, RecorderClosed) as exc:
                response = problem(503, "Unavailable", str(exc))
            except Exception as exc:  # answered, logged, and counted: never a bare 500
                log.exception("runtime %s failed", name)
                response = problem(
                    500, "Server error", f"{type(exc).__name__}: the request was not completed"
                )
            if response.status_code >= 400:
                metrics.errors.labels(name, str(response.status_code)).inc()
            observe(time.perf_counter() - started)
            return response

        return run

    async def decisions(request: Request, env: str) -> Response:
        ask: DecisionIn = decode(_decision, await read_body(request))
        session = await runtime.session(env, ask.session_id) if ask.session_id else None
        return json(await runtime.decide(env, ask, session))

    async def events(request: Request, env: str) -> Response:
        raw = decode(_json_object, await read_body(request))
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
            session = await runtime.session(env, ids.pop())
        elif len(ids) > 1:
            raise Problem(
                422, "Invalid request", "post the events of one session at a time (session_id)"
            )
        result = await runtime.post_events(env, items, session)
        if result["rejected"] and not (result["stored"] or result["duplicates"]):
            return problem(
                422,
                "No event stored",
                "; ".join(r["error"] for r in result["results"]),
                **result,
            )
        return json(result)

    async def start_session(request: Request, env: str) -> Response:
        body: SessionIn = decode(_session, await read_body(request))
        return json(_session_view(await runtime.start_session(env, body)), 201)

    async def get_session(request: Request, env: str) -> Response:
        return json(_session_view(await runtime.session(env, request.path_params["id"])))

    async def set_audience(request: Request, env: str) -> Response:
        body: AudienceIn = decode(_audience, await read_body(request))
        session = await runtime.set_audience(env, request.path_params["id"], body)
        return json(_session_view(session))

    async def end_session(request: Request, env: str) -> Response:
        session_id = request.path_params["id"]
        if not await runtime.end_session(env, session_id):
            raise SessionNotFound(f"no session {session_id!r} in {env!r} (ended or expired)")
        return Response(status_code=204)

    async def session_by_id(request: Request, env: str) -> Response:
        # One route for both methods, so that a 405 lists them all in its Allow header.
        if request.method == "DELETE":
            return await end_session(request, env)
        return await get_session(request, env)

    async def history(request: Request, env: str) -> Response:
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
        runtime.live(env)
        data = await asyncio.to_thread(
            profile_history,
            node.db,
            env,
            request.query_params.get("audience"),
            request.path_params["id"],
            int(limit_text),
        )
        return json(data)

    return [
        Route("/v1/decisions", endpoint("decisions", decisions), methods=["POST"]),
        Route("/v1/events", endpoint("events", events), methods=["POST"]),
        Route("/v1/sessions", endpoint("sessions", start_session), methods=["POST"]),
        Route("/v1/sessions/{id}", endpoint("sessions", session_by_id), methods=["GET", "DELETE"]),
        Route("/v1/sessions/{id}/audience", endpoint("sessions", set_audience), methods=["PUT"]),
        Route("/v1/profiles/{id}/history", endpoint("history", history), methods=["GET"]),
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
