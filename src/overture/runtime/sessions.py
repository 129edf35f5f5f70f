"""Runtime sessions: what a touchpoint's visit carries from one call to the next.

A session holds the audience and profile (loaded once, when it starts or switches
audience), the context parameters sent so far, the offers proposed in it (so that an
event can name an offer by its tracking code, or a contact event can mean "every offer
of the last list", as in Interact) and the offers accepted or rejected in it (which later
decisions of the session leave out).

Two stores, one interface: in the node's memory (the default; bounded in number, least
recently used evicted first, idle ones expired) or in Redis (`--redis`), so that any node
behind a load balancer can continue a session another started. Both expire a session
after `idle_seconds` without a call.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Protocol, cast

import msgspec

MAX_REMEMBERED = 200  # offers remembered per session (the most recent)


class Session(msgspec.Struct, kw_only=True):
    id: str
    environment: str
    audience: str
    channel: str | None = None  # Interact's interactive channel, when started by the servlet
    profile_id: str | None = None
    profile: dict[str, Any] = msgspec.field(default_factory=dict)
    context: dict[str, Any] = msgspec.field(default_factory=dict)
    # tracking code -> [offer code, placement, channel], most recent last
    offers: dict[str, list[str]] = msgspec.field(default_factory=dict)
    last: list[str] = msgspec.field(default_factory=list)  # tracking codes of the last answer
    responded: list[str] = msgspec.field(default_factory=list)  # offers accepted or rejected
    debug: bool = False
    started: float = 0.0
    warnings: list[str] = msgspec.field(default_factory=list)  # from loading the profile

    def remember(self, propositions: list[tuple[str, str, str, str]]) -> None:
        """Record an answer's propositions: (tracking code, offer, placement, channel)."""
        self.last = [p[0] for p in propositions]
        for code, offer, placement, channel in propositions:
            self.offers[code] = [offer, placement, channel]
        excess = len(self.offers) - MAX_REMEMBERED
        if excess > 0:
            for code in list(self.offers)[:excess]:
                del self.offers[code]


class SessionStore(Protocol):
    idle_seconds: float

    async def get(self, environment: str, session_id: str) -> Session | None: ...

    async def put(self, session: Session) -> None: ...

    async def delete(self, environment: str, session_id: str) -> bool: ...

    def count(self) -> int | None:
        """Sessions held (None when the store cannot tell cheaply)."""
        ...

    async def close(self) -> None: ...


class MemorySessions:
    """Sessions in this node's memory: at most `max_sessions`, each expired after
    `idle_seconds` without use. When full, the least recently used session goes."""

    def __init__(self, idle_seconds: float = 1800.0, max_sessions: int = 100_000) -> None:
        self.idle_seconds = idle_seconds
        self.max_sessions = max_sessions
        self._items: OrderedDict[tuple[str, str], tuple[float, Session]] = OrderedDict()
        self.evicted = 0
        self.expired = 0

    async def get(self, environment: str, session_id: str) -> Session | None:
        key = (environment, session_id)
        item = self._items.get(key)
        if item is None:
            return None
        now = time.monotonic()
        if now - item[0] > self.idle_seconds:
            del self._items[key]
            self.expired += 1
            return None
        self._items[key] = (now, item[1])
        self._items.move_to_end(key)
        return item[1]

    async def put(self, session: Session) -> None:
        key = (session.environment, session.id)
        self._items[key] = (time.monotonic(), session)
        self._items.move_to_end(key)
        self._sweep()

    async def delete(self, environment: str, session_id: str) -> bool:
        return self._items.pop((environment, session_id), None) is not None

    def count(self) -> int:
        return len(self._items)

    async def close(self) -> None:
        self._items.clear()

    def _sweep(self) -> None:
        """Drop idle sessions from the old end, then the oldest while over the bound."""
        limit = time.monotonic() - self.idle_seconds
        while self._items:
            key, (touched, _s) = next(iter(self._items.items()))
            if touched >= limit:
                break
            del self._items[key]
            self.expired += 1
        while len(self._items) > self.max_sessions:
            self._items.popitem(last=False)
            self.evicted += 1


class RedisSessions:
    """Sessions in Redis, shared by every node: one key per session, expiring after
    `idle_seconds` (each use renews it; kept to the millisecond, so a fraction of a second
    is not rounded away). Stored as MessagePack, or as JSON when a value is beyond what
    MessagePack holds (an integer beyond 64 bits in the context)."""

    def __init__(self, url: str, idle_seconds: float = 1800.0, prefix: str = "overture") -> None:
        from overture.history.redis_ledger import redis_client

        self.idle_seconds = idle_seconds
        self.prefix = prefix
        self.redis = redis_client(url)  # fails within seconds when Redis is down (a 503)
        self._encode = msgspec.msgpack.Encoder().encode
        self._decode = msgspec.msgpack.Decoder(Session).decode
        self._decode_json = msgspec.json.Decoder(Session).decode

    def _key(self, environment: str, session_id: str) -> str:
        return f"{self.prefix}:session:{environment}:{session_id}"

    def _ttl(self) -> int:
        return max(1, round(self.idle_seconds * 1000))  # milliseconds

    async def get(self, environment: str, session_id: str) -> Session | None:
        key = self._key(environment, session_id)
        data = cast(bytes | None, await self.redis.getex(key, px=self._ttl()))
        if data is None:
            return None
        # a MessagePack map never starts with "{" (0x7b is the integer 123)
        return self._decode_json(data) if data[:1] == b"{" else self._decode(data)

    async def put(self, session: Session) -> None:
        key = self._key(session.environment, session.id)
        try:
            data = self._encode(session)
        except OverflowError:
            data = msgspec.json.encode(session)
        await self.redis.set(key, data, px=self._ttl())

    async def delete(self, environment: str, session_id: str) -> bool:
        return bool(await self.redis.delete(self._key(environment, session_id)))

    def count(self) -> None:
        return None

    async def close(self) -> None:
        await self.redis.aclose()
