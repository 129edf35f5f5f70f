"""Catalog import/export and the audit log."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from overture.auth import Permission
from overture.design import audit, transfer
from overture.design.catalog import Actor
from overture.design.http import database, require
from overture.design.routes.objects import Limit, Offset, Reader
from overture.design.schemas import AuditOut, Files, ImportOut, Page

router = APIRouter(prefix="/v1/design", tags=["catalog"])


@router.post(
    "/catalog/import",
    response_model=ImportOut,
    summary="Make the database hold exactly this catalog (all or nothing)",
)
def import_catalog(
    request: Request, body: Files, actor: Annotated[Actor, Depends(require(Permission.IMPORT))]
) -> dict[str, Any]:
    with database(request).session() as s:
        summary = transfer.import_catalog(s, actor, body.files)
    return {"settings_changed": summary.pop("settings_changed"), "sections": summary}


@router.get("/catalog/export", response_model=Files, summary="The catalog as YAML files")
def export_catalog(request: Request, actor: Reader) -> dict[str, Any]:
    with database(request).session() as s:
        return {"files": transfer.export(s)}


@router.get("/audit", response_model=Page[AuditOut], summary="The audit log, newest first")
def audit_log(
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.AUDIT))],
    operator: str | None = None,
    action: Annotated[str | None, Query(description="e.g. deploy, offers.approve")] = None,
    kind: str | None = None,
    key: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    with database(request).session() as s:
        rows, total = audit.entries(
            s, operator=operator, action=action, kind=kind, key=key, limit=limit, offset=offset
        )
        items = [
            {
                "id": r.id,
                "at": r.at,
                "operator": r.operator,
                "action": r.action,
                "kind": r.kind,
                "key": r.key,
                "before": r.before,
                "after": r.after,
            }
            for r in rows
        ]
    return {"items": items, "total": total, "limit": limit, "offset": offset}
