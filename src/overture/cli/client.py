"""The design API as the command line sees it: a server URL, the token `overture login`
saved for it, and problem+json errors turned into readable messages.

Logins are kept in $OVERTURE_CONFIG_DIR/credentials.json (default ~/.config/overture),
readable by the user only, one token per server; the last server logged in to is the
default for the next command. OVERTURE_URL and OVERTURE_TOKEN override both (for scripts).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"


def config_dir() -> Path:
    if folder := os.environ.get("OVERTURE_CONFIG_DIR"):
        return Path(folder)
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "overture"


def _credentials_file() -> Path:
    return config_dir() / "credentials.json"


def load_credentials() -> dict[str, Any]:
    try:
        data = json.loads(_credentials_file().read_text())
    except (OSError, ValueError):
        return {"current": None, "servers": {}}
    if not isinstance(data, dict) or not isinstance(data.get("servers"), dict):
        return {"current": None, "servers": {}}
    return data


def save_login(url: str, login: dict[str, Any]) -> Path:
    data = load_credentials()
    data["servers"][url] = {
        "token": login["token"],
        "operator": login["operator"],
        "expires_at": login["expires_at"],
    }
    data["current"] = url
    return _write(data)


def forget_login(url: str) -> None:
    data = load_credentials()
    data["servers"].pop(url, None)
    if data.get("current") == url:
        data["current"] = None
    _write(data)


def _write(data: dict[str, Any]) -> Path:
    path = _credentials_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    tmp.replace(path)
    return path


def server_url(url: str | None) -> str:
    """--url, else $OVERTURE_URL, else the server last logged in to, else the default."""
    chosen = url or os.environ.get("OVERTURE_URL") or load_credentials().get("current")
    return str(chosen or DEFAULT_URL).rstrip("/")


class ApiError(Exception):
    """An answer other than 2xx, or no answer at all, described for a person."""

    def __init__(self, message: str, status: int = 0, problem: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.problem = problem or {}

    @property
    def issues(self) -> list[dict[str, Any]]:
        errors = self.problem.get("errors")
        return errors if isinstance(errors, list) else []


@dataclass
class Response:
    data: Any
    etag: str | None


class Api:
    """A logged-in client of one design API server."""

    def __init__(self, url: str, token: str | None, timeout: float = 120.0) -> None:
        self.url = url
        if token is not None and not token.isascii():
            raise ApiError("the token holds characters no token has: log in again")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            self._http = httpx.Client(base_url=url, headers=headers, timeout=timeout)
        except (httpx.InvalidURL, ValueError) as exc:
            raise ApiError(f"{url!r} is not a usable URL: {exc}") from None

    @classmethod
    def connect(cls, url: str | None = None) -> Api:
        base = server_url(url)
        token = os.environ.get("OVERTURE_TOKEN")
        if token is None:
            saved = load_credentials()["servers"].get(base)
            found = saved.get("token") if isinstance(saved, dict) else None
            token = found if isinstance(found, str) else None
        if not token:
            raise ApiError(f"not logged in to {base}: run `overture login --url {base}`")
        return cls(base, token)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        if_match: str | None = None,
    ) -> Response:
        headers = {"If-Match": if_match} if if_match else {}
        try:
            answer = self._http.request(
                method, path, json=json_body, params=params, headers=headers
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise ApiError(
                f"cannot reach the design API at {self.url} ({exc}); is `overture serve` "
                "running there?"
            ) from None
        try:
            data = answer.json() if answer.content else None
        except ValueError:  # not the design API (a proxy's error page, another service)
            raise ApiError(
                f"{self.url} answered {method} {path} with HTTP {answer.status_code} and no "
                "JSON: is it the Overture design API?",
                answer.status_code,
            ) from None
        if answer.is_success:
            return Response(data, answer.headers.get("etag"))
        raise _error(answer, data)

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None, if_match: str | None = None) -> Any:
        return self.call("POST", path, json_body=body, if_match=if_match).data

    def delete(self, path: str) -> None:
        self.call("DELETE", path)

    def pages(self, path: str, **params: Any) -> list[Any]:
        """Every item of a paginated list."""
        items: list[Any] = []
        while True:
            page = self.get(path, **params, limit=500, offset=len(items)).data
            items.extend(page["items"])
            if not page["items"] or len(items) >= page["total"]:
                return items


def _error(answer: httpx.Response, data: Any) -> ApiError:
    problem = data if isinstance(data, dict) else {}
    detail = problem.get("detail") or problem.get("title") or answer.reason_phrase
    if answer.status_code == 401:
        detail = f"{detail}: log in again with `overture login`"
    return ApiError(f"{detail} (HTTP {answer.status_code})", answer.status_code, problem)
