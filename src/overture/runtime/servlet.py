"""The Interact-compatible servlet: `POST /interact/servlet/RestServlet`.

Touchpoints written for HCL Unica Interact send a batch of commands for one session and
read one response per command; this module translates both ways onto the runtime. The
mapping (docs/runtime.md): interactive channel = channel, interaction point = placement,
audience level = audience, treatment code = tracking code, session parameters = context.

As Interact does, commands run in order, an error in one does not stop the next, each
response's statusCode is the highest level of its messages (0 success, 1 warning,
2 error), and batchStatusCode the highest statusCode. Unknown channels, interaction
points, events or actions are answered with messages, not with an HTTP error; only a body
that is not a JSON batch at all, or a missing API key, gets an HTTP status.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

import overture
from overture.catalog.model import EVENT_NAME_RULE, event_name_problem
from overture.engine import RequestError
from overture.history.deployed import LivePlan
from overture.history.recorder import RecorderClosed
from overture.rules.types import Type
from overture.runtime import api
from overture.runtime.fastpath import Answer, BodyTooLarge, Call, Handler
from overture.runtime.keys import KeyRefused, key_from_headers
from overture.runtime.node import RuntimeNode
from overture.runtime.schemas import AudienceIn, DecisionIn, EventIn, PlacementAsk, SessionIn
from overture.runtime.service import NotServed, Runtime, SessionNotFound, Unavailable
from overture.runtime.sessions import Session

log = logging.getLogger("overture.runtime")
INFO, WARNING, ERROR = 0, 1, 2
VERSION = overture.__version__
PATH = "/interact/servlet/RestServlet"
TRACKING_CODE = "UACIOfferTrackingCode"
_TRACKING_CODE = TRACKING_CODE.lower()

# Message codes (docs/runtime.md lists them with what to do).
SESSION_MISSING = 1
CHANNEL_UNKNOWN = 2
IP_UNKNOWN = 3
EVENT_UNKNOWN = 4
AUDIENCE_UNKNOWN = 5
PROFILE_NOT_FOUND = 6
BAD_NUMBER_REQUESTED = 7
BAD_DUP_POLICY = 8
BAD_TRACKING_CODE = 9
ACTION_UNKNOWN = 10
BAD_COMMAND = 11
UNAVAILABLE = 12
REQUEST_REFUSED = 13
INTERNAL = 99

# A number beyond a float's range is infinite (and refused where it is used), not a reason
# to refuse the whole batch.
_decode = msgspec.json.Decoder(dict[str, Any], float_hook=float).decode
MAX_ID = 128  # the longest session or audience id (as the native API takes)


class CommandError(Exception):
    def __init__(self, code: int, msg: str, detail: str = "") -> None:
        super().__init__(msg)
        self.code, self.msg, self.detail = code, msg, detail


class _Reply:
    """One command's response, as Interact shapes it."""

    def __init__(self, session_id: str | None) -> None:
        self.session_id = session_id
        self.messages: list[dict[str, Any]] = []
        self.offer_lists: list[dict[str, Any]] | None = None
        self.profile: list[dict[str, Any]] | None = None

    def message(self, level: int, code: int, msg: str, detail: str = "") -> None:
        self.messages.append({"msgLevel": level, "msg": msg, "detailMsg": detail, "msgCode": code})

    def body(self) -> dict[str, Any]:
        return {
            "sessionId": self.session_id,
            "statusCode": max((m["msgLevel"] for m in self.messages), default=0),
            "version": VERSION,
            "offerLists": self.offer_lists,
            "profile": self.profile,
            "messages": self.messages,
        }


def hot(node: RuntimeNode) -> dict[str, Handler]:
    """The servlet, for the fast path (fastpath.py): POST only."""
    runtime = node.runtime
    observe = node.metrics.latency.labels("servlet").observe

    async def servlet(call: Call) -> Answer:
        started = time.perf_counter()
        try:
            env = await node.keys.environment(key_from_headers(call.headers))
            body = await call.body()
            batch = _decode(body)
        except KeyRefused as exc:
            return api.problem(401, "Not authenticated", str(exc))
        except BodyTooLarge as exc:
            return api.problem(413, "Body too large", str(exc))
        except (
            msgspec.DecodeError,
            msgspec.ValidationError,
            RecursionError,
            UnicodeDecodeError,
        ) as exc:
            why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            if isinstance(exc, UnicodeDecodeError):  # msgspec: a string's bytes are not UTF-8
                why = api.not_utf8(body)
            return api.problem(
                400,
                "Malformed batch",
                f'send {{"sessionId": ..., "commands": [{{"action": ...}}]}} as JSON ({why})',
            )
        session_id = batch.get("sessionId")
        commands = batch.get("commands")
        if commands is None:
            commands = [batch] if "action" in batch else []
        elif not isinstance(commands, list):
            return api.problem(
                400,
                "Malformed batch",
                f"commands is a list of {{action: ...}} objects, not {type(commands).__name__}",
            )
        # JSON carries a NUL only escaped: look for it in the commands only when there is one
        nul = b"\\u0000" in body
        replies = []
        for command in commands:
            reply = await _run(runtime, env, session_id, command, nul)
            session_id = reply.session_id or session_id
            replies.append(reply.body())
        observe(time.perf_counter() - started)
        status = max((r["statusCode"] for r in replies), default=0)
        return api.json({"batchStatusCode": status, "responses": replies})

    return {PATH: servlet}


async def _run(
    runtime: Runtime, env: str, batch_session: Any, command: Any, nul: bool = False
) -> _Reply:
    if not isinstance(command, dict):
        reply = _Reply(_text(batch_session))
        reply.message(ERROR, BAD_COMMAND, "a command is a JSON object with an action")
        return reply
    session_id = _text(command.get("sessionId", batch_session))
    where = nul and (api.nul_in(command, "$") or api.nul_in(session_id, "sessionId"))
    if where:
        reply = _Reply(None)
        reply.message(
            ERROR, BAD_COMMAND, "text may not contain the NUL character (\\u0000)", f"at {where}"
        )
        return reply
    if session_id is not None and len(session_id) > MAX_ID:
        reply = _Reply(None)
        reply.message(ERROR, BAD_COMMAND, f"a sessionId has at most {MAX_ID} characters")
        return reply
    reply = _Reply(session_id)
    action = str(command.get("action", ""))
    handler = _ACTIONS.get(action.lower())
    if handler is None:
        reply.message(
            ERROR,
            ACTION_UNKNOWN,
            f"unknown action {action!r}",
            "actions: " + ", ".join(_NAMES),
        )
        return reply
    try:
        await handler(runtime, env, session_id, command, reply)
    except CommandError as exc:
        reply.message(ERROR, exc.code, exc.msg, exc.detail)
    except SessionNotFound:
        reply.message(ERROR, SESSION_MISSING, *_invalid_session(runtime, env, session_id))
    except RequestError as exc:
        reply.message(ERROR, REQUEST_REFUSED, "the request was refused", "; ".join(exc.problems))
    except (Unavailable, NotServed, RecorderClosed) as exc:
        reply.message(ERROR, UNAVAILABLE, str(exc))
    except Exception:  # one command's failure must not lose the batch
        log.exception("servlet action %s failed", action)
        # as the API's 500: no exception's name or text (they can carry internals), the
        # traceback is in the node's log
        reply.message(ERROR, INTERNAL, f"{action} failed: an internal error, logged on the node")
    return reply


# -- actions ---------------------------------------------------------------------------------
async def _start_session(
    runtime: Runtime, env: str, session_id: str | None, cmd: dict[str, Any], reply: _Reply
) -> None:
    live = runtime.live(env)
    channel = _channel(live, cmd.get("ic"))
    audience, profile_id = _audience(live, cmd)
    session = await runtime.start_session(
        env,
        SessionIn(
            session_id=session_id or None,  # none: the runtime makes one up, answered below
            audience=audience,
            profile_id=profile_id,
            context=_values(cmd.get("parameters")),
            rely_on_existing=bool(cmd.get("relyOnExistingSession", False)),
        ),
    )
    session.channel = channel
    session.debug = bool(cmd.get("debug", session.debug))
    await runtime.sessions.put(session)
    reply.session_id = session.id  # the batch's next commands run in it
    _warn(reply, session)


async def _get_offers(
    runtime: Runtime, env: str, session_id: str | None, cmd: dict[str, Any], reply: _Reply
) -> None:
    session = await _session(runtime, env, session_id)
    live = runtime.live(env)
    ip = _placement(live, session, cmd.get("ip"))
    count = _number(cmd.get("numberRequested", 1))
    answer = await runtime.decide(
        env, DecisionIn(placements=[PlacementAsk(ip, count)], session_id=session.id), session
    )
    reply.offer_lists = [_offer_list(live, p) for p in answer["placements"]]
    _warn(reply, session, answer)


async def _get_offers_multi(
    runtime: Runtime, env: str, session_id: str | None, cmd: dict[str, Any], reply: _Reply
) -> None:
    session = await _session(runtime, env, session_id)
    live = runtime.live(env)
    requests = cmd.get("getOfferRequests")
    if not isinstance(requests, list) or not requests:
        raise CommandError(
            BAD_COMMAND, "getOffersForMultipleInteractionPoints needs getOfferRequests"
        )
    asks: list[tuple[PlacementAsk, int]] = []
    for item in requests:
        if not isinstance(item, dict):
            raise CommandError(BAD_COMMAND, "each getOfferRequest is an object with an ip")
        policy = item.get("dupPolicy", item.get("duplicationPolicy", 1))
        if policy not in (1, 2):
            reply.message(
                WARNING,
                BAD_DUP_POLICY,
                f"invalid duplication policy {policy!r} for {item.get('ip')!r}",
                "1: no duplicates across interaction points; 2: allow; 1 was used",
            )
            policy = 1
        ask = PlacementAsk(
            _placement(live, session, item.get("ip")),
            _number(item.get("numberRequested", 1)),
        )
        asks.append((ask, policy))
    # In request order, as priority: the no-duplicate ones share one decision; each
    # "allow duplicates" one gets its own.
    lists: list[dict[str, Any] | None] = [None] * len(asks)
    shared = [i for i, (_a, p) in enumerate(asks) if p == 1]
    groups = ([shared] if shared else []) + [[i] for i, (_a, p) in enumerate(asks) if p == 2]
    for group in groups:
        answer = await runtime.decide(
            env,
            DecisionIn(placements=[asks[i][0] for i in group], session_id=session.id),
            session,
        )
        for i, placement in zip(group, answer["placements"], strict=True):
            lists[i] = _offer_list(live, placement)
        _warn(reply, session, answer)
    reply.offer_lists = [x for x in lists if x is not None]


async def _post_event(
    runtime: Runtime, env: str, session_id: str | None, cmd: dict[str, Any], reply: _Reply
) -> None:
    session = await _session(runtime, env, session_id)
    live = runtime.live(env)
    name = cmd.get("event")
    if not isinstance(name, str) or not name.strip():
        raise CommandError(BAD_COMMAND, "postEvent needs an event name")
    problem = event_name_problem(name)
    if problem is not None:
        raise CommandError(
            EVENT_UNKNOWN, f"event {name!r} is not a valid event name: {problem}", EVENT_NAME_RULE
        )
    params = _values(cmd.get("parameters"))
    # reserved parameters match ignoring case, as every other name does
    codes = [params.pop(k) for k in [k for k in params if k.lower() == _TRACKING_CODE]]
    code = next((c for c in codes if c not in (None, "")), None)
    try:
        event = EventIn(
            name=name,
            tracking_code=None if code is None else str(code),
            channel=session.channel,
            attributes={k: _json_safe(v) for k, v in params.items()},
        )
        msgspec.convert(msgspec.to_builtins(event), EventIn)  # lengths
    except msgspec.ValidationError:  # the tracking code: longer than any
        raise CommandError(BAD_TRACKING_CODE, f"unknown tracking code {code!r}") from None
    if live.event_kind(session.channel, name) == "custom":
        reply.message(
            WARNING,
            EVENT_UNKNOWN,
            f"event {name!r} is not configured on channel {session.channel!r}",
            "stored as a custom event; configure it under the channel's events to log a "
            "contact, an acceptance or a rejection",
        )
    result = await runtime.post_events(env, [event], session)
    for item in result["results"]:
        if item["status"] == "rejected":
            code = BAD_TRACKING_CODE if "tracking code" in item["error"] else BAD_COMMAND
            reply.message(ERROR, code, item["error"])


async def _set_audience(
    runtime: Runtime, env: str, session_id: str | None, cmd: dict[str, Any], reply: _Reply
) -> None:
    session = await _session(runtime, env, session_id)
    live = runtime.live(env)
    audience, profile_id = _audience(live, cmd)
    session = await runtime.set_audience(
        env,
        session.id,
        AudienceIn(
            audience=audience, profile_id=profile_id, context=_values(cmd.get("parameters"))
        ),
    )
    _warn(reply, session)


async def _get_profile(
    runtime: Runtime, env: str, session_id: str | None, cmd: dict[str, Any], reply: _Reply
) -> None:
    session = await _session(runtime, env, session_id)
    plan = runtime.live(env).plan
    info = plan.audiences.get(session.audience)
    typed: dict[str, tuple[Any, Type | None]] = {}
    for values, schema, coerce in (
        (session.profile, info.fields if info else {}, info.coerce if info else None),
        (session.context, plan.catalog.context, plan.coerce_context),
    ):
        coerced = coerce(values)[0] if coerce is not None else {}
        for name, value in values.items():
            if name in coerced:  # typed as the schema says
                typed[name] = (coerced[name], schema[name])
            else:  # not in the schema, or not of its type: as it is
                typed[name] = (value, None)
    reply.profile = [_nvp(name, value, kind) for name, (value, kind) in typed.items()]


async def _set_debug(
    runtime: Runtime, env: str, session_id: str | None, cmd: dict[str, Any], reply: _Reply
) -> None:
    session = await _session(runtime, env, session_id)
    session.debug = bool(cmd.get("debug", False))
    await runtime.sessions.put(session)


async def _end_session(
    runtime: Runtime, env: str, session_id: str | None, cmd: dict[str, Any], reply: _Reply
) -> None:
    if not session_id or not await runtime.end_session(env, session_id):
        raise SessionNotFound(session_id)


async def _get_version(
    runtime: Runtime, env: str, session_id: str | None, cmd: dict[str, Any], reply: _Reply
) -> None:
    reply.message(INFO, 0, f"Overture {VERSION}")


Action = Callable[[Runtime, str, str | None, dict[str, Any], _Reply], Awaitable[None]]
_NAMES = [
    "startSession",
    "getOffers",
    "getOffersForMultipleInteractionPoints",
    "postEvent",
    "setAudience",
    "getProfile",
    "setDebug",
    "endSession",
    "getVersion",
]
_ACTIONS: dict[str, Action] = dict(
    zip(
        (n.lower() for n in _NAMES),
        (
            _start_session,
            _get_offers,
            _get_offers_multi,
            _post_event,
            _set_audience,
            _get_profile,
            _set_debug,
            _end_session,
            _get_version,
        ),
        strict=True,
    )
)


# -- translation -------------------------------------------------------------------------
async def _session(runtime: Runtime, env: str, session_id: str | None) -> Session:
    if not session_id:
        raise SessionNotFound(session_id)
    return await runtime.session(env, session_id)


def _invalid_session(runtime: Runtime, env: str, session_id: str | None) -> tuple[str, str]:
    """The message for a session that is not there, in Interact's words (INVALID_SESSION_ID)
    first: clients start a new session when they read "invalid session id", "session
    expired" or "session timeout" in a message of level 2, code 1."""
    detail = (
        "start a new session with startSession (it makes up a sessionId when none is sent), "
        "then repeat the command"
    )
    if not session_id:
        return "Invalid session id: no sessionId was sent with the command", detail
    idle = runtime.sessions.idle_seconds
    return (
        f"Invalid session id {session_id!r} (session expired, ended or never started): "
        f"no session of that id in {env!r}; a session expires after {idle:.0f} s idle "
        "(session timeout)",
        detail,
    )


def _channel(live: LivePlan, ic: Any) -> str:
    names = {c.name.lower(): c.name for c in live.catalog.channels}
    found = names.get(str(ic or "").lower())
    if found is None:
        raise CommandError(
            CHANNEL_UNKNOWN,
            f"interactive channel {ic!r} is not recognised",
            "channels: " + ", ".join(names.values()),
        )
    return found


def _placement(live: LivePlan, session: Session, ip: Any) -> str:
    names = {
        p.name.lower(): p.name
        for p in live.catalog.placements
        if session.channel is None or p.channel == session.channel
    }
    found = names.get(str(ip or "").lower())
    if found is None:
        where = f" of channel {session.channel!r}" if session.channel else ""
        raise CommandError(
            IP_UNKNOWN,
            f"interaction point {ip!r} is not recognised{where}",
            "interaction points: " + ", ".join(names.values()),
        )
    return found


def _audience(live: LivePlan, cmd: dict[str, Any]) -> tuple[str, str | None]:
    level = cmd.get("audienceLevel")
    audiences = {a.name.lower(): a for a in live.catalog.audiences}
    if level in (None, ""):
        audience = audiences[live.plan.default_audience.lower()]
    else:
        found = audiences.get(str(level).lower())
        if found is None:
            raise CommandError(
                AUDIENCE_UNKNOWN,
                f"audience level {level!r} is not recognised",
                "audience levels: " + ", ".join(a.name for a in audiences.values()),
            )
        audience = found
    ids = cmd.get("audienceID") or []
    if not isinstance(ids, list):
        raise CommandError(BAD_COMMAND, "audienceID is a list of {n, v, t}")
    values = _values(ids)
    if not values:
        return audience.name, None
    wanted = audience.id_field.replace("_", "").lower()
    chosen = next((v for k, v in values.items() if k.replace("_", "").lower() == wanted), None)
    if chosen is None and len(values) == 1:
        chosen = next(iter(values.values()))
    if chosen is None:
        raise CommandError(
            BAD_COMMAND,
            f"audienceID has no field {audience.id_field!r}",
            f"audience {audience.name!r} is identified by {audience.id_field}",
        )
    profile_id = _id_text(chosen)
    if len(profile_id) > MAX_ID:
        raise CommandError(BAD_COMMAND, f"an audienceID value has at most {MAX_ID} characters")
    return audience.name, profile_id


def _number(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise CommandError(BAD_NUMBER_REQUESTED, "numberRequested must be a number above 0")
    try:
        number = int(float(value))
    except (ValueError, OverflowError):  # not a number, NaN, infinite
        raise CommandError(
            BAD_NUMBER_REQUESTED, "numberRequested must be a number above 0"
        ) from None
    if number <= 0:
        raise CommandError(BAD_NUMBER_REQUESTED, f"numberRequested must be > 0, not {number}")
    return min(number, 100)


def _values(pairs: Any) -> dict[str, Any]:
    """NameValuePairs {n, v, t} as a dictionary (numeric as numbers, datetime as text)."""
    if not pairs:
        return {}
    if not isinstance(pairs, list):
        raise CommandError(BAD_COMMAND, "parameters are a list of {n: name, v: value, t: type}")
    out: dict[str, Any] = {}
    for pair in pairs:
        if not isinstance(pair, dict) or not isinstance(pair.get("n"), str):
            raise CommandError(BAD_COMMAND, "a parameter is {n: name, v: value, t: type}")
        value = pair.get("v")
        kind = str(pair.get("t", "string")).lower()
        if kind == "numeric" and isinstance(value, str):
            try:
                value = float(value) if any(c in value for c in ".eE") else int(value)
            except ValueError:
                raise CommandError(
                    BAD_COMMAND, f"parameter {pair['n']!r} is numeric but {value!r} is not"
                ) from None
        elif kind == "datetime" and isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                value = dt.datetime.fromtimestamp(value / 1000, dt.UTC).isoformat()
            except (OverflowError, ValueError, OSError):
                raise CommandError(
                    BAD_COMMAND, f"parameter {pair['n']!r}: {value!r} ms is not a time"
                ) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise CommandError(BAD_COMMAND, f"parameter {pair['n']!r} is not a finite number")
        out[pair["n"]] = value
    return out


# Interact's NameValuePair types are string, numeric and datetime: a schema's type, as sent
_INTERACT_TYPE = {
    Type.STRING: "string",
    Type.INT: "numeric",
    Type.FLOAT: "numeric",
    Type.BOOL: "string",  # "true" or "false": Interact has no boolean
    Type.DATE: "datetime",  # its midnight, UTC
    Type.DATETIME: "datetime",
    Type.LIST: "string",  # the items joined with ","
}


def _nvp(name: str, value: Any, kind: Type | None = None) -> dict[str, Any]:
    """A NameValuePair: typed as the schema says (`kind`, the value coerced to it), else
    from the value. A boolean is "true" or "false", a date or datetime ISO 8601 in UTC
    ("2026-11-15T13:12:23Z"; a date its midnight), a list its items joined with ","."""
    if value is None:
        return {"n": name, "v": None, "t": _INTERACT_TYPE[kind] if kind else "string"}
    if isinstance(value, bool):
        return {"n": name, "v": str(value).lower(), "t": "string"}
    if isinstance(value, (int, float)):
        return {"n": name, "v": value, "t": "numeric"}
    if isinstance(value, dt.date):  # a datetime too
        return {"n": name, "v": _iso_utc(value), "t": "datetime"}
    if isinstance(value, list):
        return {"n": name, "v": ",".join(str(v) for v in value), "t": "string"}
    return {"n": name, "v": str(value), "t": "string"}


def _iso_utc(value: dt.date) -> str:
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    elif value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds") + "Z"


def _offer_list(live: LivePlan, placement: dict[str, Any]) -> dict[str, Any]:
    offers = []
    for o in placement["offers"]:
        source = live.offers.get(o["offer"])
        attributes = [_nvp(k, v) for k, v in o["content"].items()]
        if source is not None:
            attributes += [_nvp(k, v) for k, v in source.attributes.items()]
        score = o["score"]
        offers.append(
            {
                "n": o["name"],
                "code": [o["offer"]],
                "treatmentCode": o["tracking_code"],
                "score": round(score) if math.isfinite(score) else 0,
                "desc": source.description if source is not None else "",
                "attributes": attributes,
            }
        )
    default = placement["default_content"] or {}
    return {
        "ip": placement["placement"],
        "defaultString": default.get("text", next(iter(default.values()), "")),
        "offers": offers,
    }


def _warn(reply: _Reply, session: Session, answer: dict[str, Any] | None = None) -> None:
    for warning in (answer or {}).get("warnings", session.warnings):
        code = PROFILE_NOT_FOUND if "is not in table" in warning else REQUEST_REFUSED
        reply.message(WARNING, code, warning)
    if answer is not None and session.debug:
        for error in answer.get("rule_errors", []):
            reply.message(INFO, 0, f"rule error on {error['offer_code']}: {error['message']}")


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _id_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _json_safe(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)
