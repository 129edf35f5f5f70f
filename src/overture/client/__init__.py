"""A Python client for the runtime API (sync and async, over httpx).

    from overture.client import Client

    with Client("http://127.0.0.1:8000", api_key="ovk_...") as overture:
        decision = overture.decide(["web_home_hero"], profile_id="C0000042")
        offer = decision.placements[0].offers[0]
        overture.event("click", tracking_code=offer.tracking_code)

`AsyncClient` has the same methods, as coroutines. Answers are typed structs (those the
API documents); an error answer raises `OvertureError` with the problem's detail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

import httpx
import msgspec

from overture.runtime.schemas import (
    DecisionOut,
    EventIn,
    EventResultOut,
    EventsOut,
    OfferOut,
    PlacementOut,
    SessionOut,
)

__all__ = [
    "AsyncClient",
    "Client",
    "DecisionOut",
    "EventIn",
    "EventResultOut",
    "EventsOut",
    "OfferOut",
    "OvertureError",
    "PlacementOut",
    "SessionOut",
]

T = TypeVar("T")
Placements = Sequence[str | tuple[str, int]]


class OvertureError(Exception):
    """The runtime answered with an error (problem+json)."""

    def __init__(self, status: int, title: str, detail: str, body: Any = None) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status, self.title, self.detail, self.body = status, title, detail, body


def _placements(placements: Placements) -> list[dict[str, Any]]:
    out = []
    for p in placements:
        if isinstance(p, tuple):
            out.append({"placement": p[0], "count": p[1]})
        else:
            out.append({"placement": p})
    return out


def _given(**options: Any) -> dict[str, Any]:
    """The options that were given (None: leave it to the server's default)."""
    return {
        k: list(v) if isinstance(v, (set, frozenset, tuple)) else v
        for k, v in options.items()
        if v is not None
    }


def _decision_body(placements: Placements, options: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"placements": _placements(placements)}
    body.update(
        {
            k: list(v) if k in ("categories", "themes") else v
            for k, v in options.items()
            if v is not None
        }
    )
    return body


def _event_body(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name}
    for key, value in options.items():
        if value is None:
            continue
        body[key] = value.isoformat() if isinstance(value, dt.datetime) else value
    return body


def _read(response: httpx.Response, kind: type[T] | None) -> T | None:
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = {}
        raise OvertureError(
            response.status_code,
            str(body.get("title", response.reason_phrase)),
            str(body.get("detail", response.text)),
            body,
        )
    if kind is None or response.status_code == 204:
        return None
    return msgspec.json.decode(response.content, type=kind)


class _Calls:
    """What both clients send: (method, path, body) per call."""

    @staticmethod
    def headers(api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}


class Client:
    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=url, headers=_Calls.headers(api_key), timeout=timeout, transport=transport
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _post(self, path: str, body: Any, kind: type[T]) -> T:
        response = self._http.post(path, content=msgspec.json.encode(body))
        result = _read(response, kind)
        assert result is not None
        return result

    def decide(
        self,
        placements: Placements,
        *,
        profile_id: str | None = None,
        audience: str | None = None,
        profile: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        session_id: str | None = None,
        categories: Iterable[str] | None = None,
        themes: Iterable[str] | None = None,
        explain: bool | None = None,
        record: bool | None = None,
    ) -> DecisionOut:
        """Offers for `placements` (names, or (name, count) pairs)."""
        options = _given(
            profile_id=profile_id,
            audience=audience,
            profile=profile,
            context=context,
            session_id=session_id,
            categories=categories,
            themes=themes,
            explain=explain,
            record=record,
        )
        return self._post("/v1/decisions", _decision_body(placements, options), DecisionOut)

    def event(
        self,
        name: str,
        *,
        tracking_code: str | None = None,
        offer: str | None = None,
        profile_id: str | None = None,
        event_id: str | None = None,
        session_id: str | None = None,
        channel: str | None = None,
        at: dt.datetime | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> EventResultOut:
        """Post one event; its result (stored, duplicate; a rejection raises)."""
        body = _event_body(
            name,
            _given(
                tracking_code=tracking_code,
                offer=offer,
                profile_id=profile_id,
                event_id=event_id,
                session_id=session_id,
                channel=channel,
                at=at,
                attributes=attributes,
            ),
        )
        return self._post("/v1/events", body, EventsOut).results[0]

    def events(self, events: Sequence[EventIn | Mapping[str, Any]]) -> EventsOut:
        """Post a batch; each event's result (rejected ones say why)."""
        return self._post("/v1/events", {"events": list(events)}, EventsOut)

    def start_session(
        self,
        session_id: str | None = None,
        *,
        audience: str | None = None,
        profile_id: str | None = None,
        profile: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> SessionOut:
        body = _given(
            session_id=session_id,
            audience=audience,
            profile_id=profile_id,
            profile=profile,
            context=context,
        )
        return self._post("/v1/sessions", body, SessionOut)

    def set_audience(
        self,
        session_id: str,
        *,
        audience: str | None = None,
        profile_id: str | None = None,
        profile: Mapping[str, Any] | None = None,
    ) -> SessionOut:
        body = _given(audience=audience, profile_id=profile_id, profile=profile)
        response = self._http.put(
            f"/v1/sessions/{session_id}/audience", content=msgspec.json.encode(body)
        )
        result = _read(response, SessionOut)
        assert result is not None
        return result

    def end_session(self, session_id: str) -> None:
        _read(self._http.delete(f"/v1/sessions/{session_id}"), None)

    def history(self, profile_id: str, *, limit: int = 100) -> dict[str, Any]:
        response = self._http.get(f"/v1/profiles/{profile_id}/history", params={"limit": limit})
        result = _read(response, dict[str, Any])
        assert result is not None
        return result


class AsyncClient:
    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=url, headers=_Calls.headers(api_key), timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _post(self, path: str, body: Any, kind: type[T]) -> T:
        response = await self._http.post(path, content=msgspec.json.encode(body))
        result = _read(response, kind)
        assert result is not None
        return result

    async def decide(
        self,
        placements: Placements,
        *,
        profile_id: str | None = None,
        audience: str | None = None,
        profile: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        session_id: str | None = None,
        categories: Iterable[str] | None = None,
        themes: Iterable[str] | None = None,
        explain: bool | None = None,
        record: bool | None = None,
    ) -> DecisionOut:
        options = _given(
            profile_id=profile_id,
            audience=audience,
            profile=profile,
            context=context,
            session_id=session_id,
            categories=categories,
            themes=themes,
            explain=explain,
            record=record,
        )
        return await self._post("/v1/decisions", _decision_body(placements, options), DecisionOut)

    async def event(
        self,
        name: str,
        *,
        tracking_code: str | None = None,
        offer: str | None = None,
        profile_id: str | None = None,
        event_id: str | None = None,
        session_id: str | None = None,
        channel: str | None = None,
        at: dt.datetime | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> EventResultOut:
        body = _event_body(
            name,
            _given(
                tracking_code=tracking_code,
                offer=offer,
                profile_id=profile_id,
                event_id=event_id,
                session_id=session_id,
                channel=channel,
                at=at,
                attributes=attributes,
            ),
        )
        return (await self._post("/v1/events", body, EventsOut)).results[0]

    async def events(self, events: Sequence[EventIn | Mapping[str, Any]]) -> EventsOut:
        return await self._post("/v1/events", {"events": list(events)}, EventsOut)

    async def start_session(
        self,
        session_id: str | None = None,
        *,
        audience: str | None = None,
        profile_id: str | None = None,
        profile: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> SessionOut:
        body = _given(
            session_id=session_id,
            audience=audience,
            profile_id=profile_id,
            profile=profile,
            context=context,
        )
        return await self._post("/v1/sessions", body, SessionOut)

    async def end_session(self, session_id: str) -> None:
        _read(await self._http.delete(f"/v1/sessions/{session_id}"), None)
