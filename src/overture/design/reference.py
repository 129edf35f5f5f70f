"""The API's reference pages, /docs (Swagger UI) and /redoc (ReDoc), served with their
scripts, styles and icon from this server: FastAPI's defaults load them from a CDN, so
offline (a bank's closed network, a laptop on a train) the pages were blank.

The assets come from the `fastapi-offline` package (Swagger UI 5 and ReDoc 2, what
FastAPI's defaults load, for OpenAPI 3.1), served from where it is installed under
ASSETS; the pages are FastAPI's own (`get_swagger_ui_html`, `get_redoc_html`) pointed
at them, with no web fonts (ReDoc's default loads Google Fonts). docs/decisions.md says why.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"
"""Where the pages' scripts, styles and icon are served."""
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'"
)
"""What the pages may load: this server's files only. (ReDoc's bundle links its logo from
its makers' site; the browser does not even ask for it.)"""


def add_reference_pages(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Serve Swagger UI at `docs_url` and ReDoc at `redoc_url` for `app`'s OpenAPI
    document, every asset from this server (the app is built with docs_url=None and
    redoc_url=None, so that FastAPI does not add its CDN pages)."""
    openapi_url = app.openapi_url or "/openapi.json"
    app.mount(ASSETS, StaticFiles(packages=[("fastapi_offline", "static")]), name="docs-assets")

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root(request)
        page = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} — reference",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )
        page.headers["content-security-policy"] = CSP
        return page

    async def redoc(request: Request) -> HTMLResponse:
        root = _root(request)
        page = get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} — ReDoc",
            redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["content-security-policy"] = CSP
        return page

    # plain routes, as FastAPI adds its own pages: no API dependency, not in the schema
    app.add_route(docs_url, swagger_ui, include_in_schema=False)
    app.add_route(redoc_url, redoc, include_in_schema=False)


def _root(request: Request) -> str:
    """The path the application is mounted at (empty at the server's root)."""
    return str(request.scope.get("root_path", "")).rstrip("/")
