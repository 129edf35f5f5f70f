"""The design API application: `create_app(database)`.

/v1/design/auth/...            log in, log out, who am I, change my password
/v1/design/<kind>[/<key>]      catalog objects: audiences, channels, zones, placements,
                               categories, segments, treatment-rules, policies, offers
/v1/design/offers/<code>/...   submit, withdraw, approve, reject, revisions
/v1/design/settings            the catalog's settings
/v1/design/environments/...    environments, plan, deployments, rollback, reports
/v1/design/catalog/import|export
/v1/design/operators, /v1/design/api-keys, /v1/design/audit
/openapi.json, /docs, /redoc   the reference pages, their assets served here (reference.py)
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException

import overture
from overture.design.errors import ServiceError
from overture.design.http import (
    BodyLimit,
    checked_query,
    data_error,
    http_error,
    integrity_error,
    service_error,
    stale_error,
    unexpected_error,
    validation_error,
)
from overture.design.reference import add_reference_pages
from overture.design.routes import (
    access,
    catalog_files,
    environments,
    objects,
    offers,
    reports,
    simulations,
)
from overture.design.routes.simulations import Simulate
from overture.store import Database

BODY_LIMIT = 1 << 20  # 1 MiB
IMPORT_LIMIT = 16 << 20  # a whole catalog


def create_app(db: Database, *, simulate: Simulate | None = None) -> FastAPI:
    """The design API on `db`; `simulate` runs the simulations endpoint's simulations
    (overture.server gives it the batch module's; without it the endpoint answers 501)."""
    app = FastAPI(
        title="Overture design API",
        version=overture.__version__,
        description="Design, approve and deploy the offer catalog. Log in at "
        "POST /v1/design/auth/login and send the token as a bearer token. Errors "
        "are RFC 9457 problem+json; updates need If-Match with the ETag you read.",
        openapi_url="/openapi.json",
        docs_url=None,  # FastAPI's pages load their assets from a CDN: reference.py's do not
        redoc_url=None,
        dependencies=[Depends(checked_query)],
    )
    app.state.db = db
    app.state.simulate = simulate
    for router in (
        access.auth,
        access.operators,
        access.api_keys,
        *objects.routers,
        offers.router,
        environments.router,
        simulations.router,
        reports.router,
        catalog_files.router,
    ):
        app.include_router(router)
    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(IntegrityError, integrity_error)
    app.add_exception_handler(DataError, data_error)
    app.add_exception_handler(StaleDataError, stale_error)
    app.add_exception_handler(Exception, unexpected_error)
    app.add_middleware(
        BodyLimit, limit=BODY_LIMIT, larger={"/v1/design/catalog/import": IMPORT_LIMIT}
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    add_reference_pages(app)
    return app


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "where": {"type": "string"},
                    "message": {"type": "string"},
                    "hint": {"type": ["string", "null"]},
                    "severity": {"type": "string"},
                },
            },
        },
        "current_version": {"type": "integer"},
    },
    "additionalProperties": True,
}
ERRORS = {
    "400": "Bad request",
    "401": "Not logged in, or the token expired",
    "403": "Not allowed",
    "404": "Not found",
    "405": "Method not allowed",
    "409": "Conflict with the current state",
    "413": "Body too large",
    "422": "Invalid request or catalog: every problem, located",
    "428": "If-Match needed",
    "429": "Too many failed logins: wait Retry-After seconds",
    "500": "Server error (the request was not applied)",
}


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, with every error response documented as it is sent: problem+json."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    problem_content = {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, description in ERRORS.items():
                responses[status] = {"description": description, "content": problem_content}
    for name in ("HTTPValidationError", "ValidationError"):
        schema["components"]["schemas"].pop(name, None)
    app.openapi_schema = schema
    return schema
