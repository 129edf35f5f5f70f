"""The combined node (`overture serve`, --role all): the runtime's routes first, then the
console and the design API, all from one application, as uvicorn runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from overture.server.asgi import VARIABLE, create
from overture.store.database import Database


def test_the_console_and_the_design_api_answer_behind_the_runtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'overture.db'}"
    Database(url).upgrade()
    monkeypatch.setenv(VARIABLE, json.dumps({"database": url, "design": True}))
    with TestClient(create()) as client:
        page = client.get("/console/login")  # url_for('static') needs the console's router
        assert page.status_code == 200, page.text[:300]
        assert "/console/static/console.css" in page.text
        assert client.get("/console/static/console.css").status_code == 200
        assert client.get("/docs").status_code == 200
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/v1/decisions").status_code == 405  # the runtime's, with Allow
