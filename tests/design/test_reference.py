"""The reference pages (/docs, /redoc) work offline: everything they load comes from the
server itself, and answers."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from overture.server import design_app
from overture.store import Database

BASE = "http://testserver"  # the test client's server
ASSET = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)|\burl:\s*'([^']+)'""")


@pytest.fixture
def client(database: Database) -> TestClient:
    return TestClient(design_app(database), base_url=BASE)


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("/docs", {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"}),
        ("/redoc", {"/docs/assets/redoc.standalone.js"}),
    ],
)
def test_a_reference_page_loads_nothing_from_elsewhere(
    client: TestClient, page: str, expected: set[str]
) -> None:
    answer = client.get(page)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    html = answer.text
    outside = [u for u in re.findall(r"https?://[^\s\"'<>)]+", html) if not u.startswith(BASE)]
    assert not outside, f"{page} loads {outside}: offline it would not"
    referenced = {a or b for a, b in ASSET.findall(html)}
    assert expected | {"/openapi.json", "/docs/assets/favicon.png"} <= referenced
    for url in referenced:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert int(asset.headers["content-length"]) > 1_000 or url == "/openapi.json", url
    assert client.get("/openapi.json").json()["info"]["title"] == "Overture design API"


def test_the_assets_are_the_ones_the_pages_need(client: TestClient) -> None:
    script = client.get("/docs/assets/swagger-ui-bundle.js")
    assert "javascript" in script.headers["content-type"] and "SwaggerUIBundle" in script.text
    redoc = client.get("/docs/assets/redoc.standalone.js")
    assert "Redoc" in redoc.text
    assert client.get("/docs/assets/swagger-ui.css").headers["content-type"].startswith("text/css")
    assert client.get("/docs/assets/nothing.js").status_code == 404
