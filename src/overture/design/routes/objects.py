"""CRUD routes for the named catalog objects, generated from the registry of kinds.

(No `from __future__ import annotations` here: FastAPI reads the routes' annotations as
objects, and some are set per kind at run time.)"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import StringConstraints

from overture.auth import Permission
from overture.design import catalog as store
from overture.design.catalog import Actor, Stored
from overture.design.errors import ServiceError
from overture.design.http import database, etag, if_match, require
from overture.design.kinds import NAMED_KINDS, CatalogSettings, Kind
from overture.design.schemas import INT_MAX, ObjectOut, Page

Reader = Annotated[Actor, Depends(require(Permission.READ))]
Limit = Annotated[int, Query(ge=1, le=500, description="At most this many items")]
Offset = Annotated[int, Query(ge=0, le=INT_MAX, description="Skip this many items")]
Filters = Annotated[
    list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_]+:")]] | None,
    Query(
        alias="filter",
        description="field:value, repeatable: keep objects whose top-level field "
        "equals the value (or lists it), e.g. channel:web",
    ),
]


def parse_filters(filters: list[str] | None) -> dict[str, str]:
    out = {}
    for item in filters or []:
        name, sep, value = item.partition(":")
        if not sep or not name:
            raise ServiceError(f"filter {item!r} must be written field:value, e.g. channel:web")
        out[name] = value
    return out


def out(stored: Stored[Any], response: Response | None = None) -> dict[str, Any]:
    if response is not None:
        response.headers["ETag"] = etag(stored.version)
    return {
        "kind": stored.kind,
        "key": stored.key,
        "version": stored.version,
        "spec": stored.spec,
        "created_at": stored.created_at,
        "created_by": stored.created_by,
        "updated_at": stored.updated_at,
        "updated_by": stored.updated_by,
        "warnings": stored.warnings,
        **stored.extra,
    }


def parametrized(generic: Any, argument: Any) -> Any:
    """generic[argument] for a type known only at run time."""
    return generic.__class_getitem__(argument)


def objects_router(kind: Kind) -> APIRouter:
    """List, create, read, replace and delete routes for one kind of catalog object."""
    router = APIRouter(prefix=f"/v1/design/{kind.path}", tags=[kind.path])
    out_type = parametrized(ObjectOut, kind.model)
    writer = Annotated[Actor, Depends(require(kind.write))]
    label = kind.singular

    def list_objects(
        request: Request,
        actor: Reader,
        q: str | None = None,
        filters: Filters = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        with database(request).session() as s:
            items, total = store.list_objects(
                s, kind, q=q, filters=parse_filters(filters), limit=limit, offset=offset
            )
            return {
                "items": [out(i) for i in items],
                "total": total,
                "limit": limit,
                "offset": offset,
            }

    def create_object(
        request: Request, response: Response, body: Any, actor: Actor
    ) -> dict[str, Any]:
        with database(request).session() as s:
            return out(store.create_object(s, actor, kind, body), response)

    def get_object(request: Request, response: Response, key: str, actor: Reader) -> dict[str, Any]:
        with database(request).session() as s:
            return out(store.get_object(s, kind, key), response)

    def update_object(
        request: Request, response: Response, key: str, body: Any, actor: Actor
    ) -> dict[str, Any]:
        with database(request).session() as s:
            stored = store.update_object(s, actor, kind, key, body, version=if_match(request))
            return out(stored, response)

    def delete_object(request: Request, key: str, actor: Actor) -> Response:
        with database(request).session() as s:
            store.delete_object(s, actor, kind, key, if_match(request))
        return Response(status_code=204)

    # the body and the writer's permission depend on the kind: set them on the functions
    for endpoint in (create_object, update_object, delete_object):
        endpoint.__annotations__["actor"] = writer
    for endpoint in (create_object, update_object):
        endpoint.__annotations__["body"] = kind.model
    router.add_api_route(
        "",
        list_objects,
        methods=["GET"],
        name=f"list {kind.path}",
        response_model=parametrized(Page, out_type),
        summary=f"List {kind.path}",
    )
    router.add_api_route(
        "",
        create_object,
        methods=["POST"],
        name=f"create {label}",
        response_model=out_type,
        status_code=201,
        summary=f"Create a {label}",
    )
    router.add_api_route(
        "/{key}",
        get_object,
        methods=["GET"],
        name=f"get {label}",
        response_model=out_type,
        summary=f"Get a {label}",
    )
    router.add_api_route(
        "/{key}",
        update_object,
        methods=["PUT"],
        name=f"update {label}",
        response_model=out_type,
        summary=f"Replace a {label} (If-Match: its ETag)",
    )
    router.add_api_route(
        "/{key}",
        delete_object,
        methods=["DELETE"],
        name=f"delete {label}",
        status_code=204,
        summary=f"Delete a {label} (If-Match: its ETag)",
    )
    return router


settings_router = APIRouter(prefix="/v1/design/settings", tags=["settings"])
SettingsOut = ObjectOut[CatalogSettings]


@settings_router.get("", response_model=SettingsOut, summary="The catalog's settings")
def get_settings(request: Request, response: Response, actor: Reader) -> dict[str, Any]:
    with database(request).session() as s:
        return out(store.get_settings(s), response)


@settings_router.put(
    "", response_model=SettingsOut, summary="Replace the catalog's settings (If-Match: their ETag)"
)
def update_settings(
    request: Request,
    response: Response,
    body: CatalogSettings,
    actor: Annotated[Actor, Depends(require(Permission.SETUP))],
) -> dict[str, Any]:
    with database(request).session() as s:
        return out(store.update_settings(s, actor, body, if_match(request)), response)


routers = [objects_router(k) for k in NAMED_KINDS] + [settings_router]
