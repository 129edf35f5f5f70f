"""Offer performance reports (history/reports.py) as JSON or CSV.

    GET /v1/design/environments/{name}/reports/{by}?since=&until=&days=&offer=&...&format=csv

(No `from __future__ import annotations` here: FastAPI reads the routes' annotations.)"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from overture.auth import Permission
from overture.design import deployments
from overture.design.catalog import Actor
from overture.design.errors import ServiceError
from overture.design.http import database, require
from overture.history import reports
from overture.history.reports import Period, ReportError

router = APIRouter(prefix="/v1/design/environments", tags=["reports"])
Reader = Annotated[Actor, Depends(require(Permission.READ))]
Day = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$", description="YYYY-MM-DD")]
Name = Annotated[str | None, Query(max_length=64)]


@router.get(
    "/{name}/reports/{by}",
    summary="Offer performance over a period, by offer, placement, channel, category, "
    "segment, day or hour",
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
)
def report(
    request: Request,
    name: str,
    by: str,
    actor: Reader,
    since: Day = None,
    until: Day = None,
    days: Annotated[int | None, Query(ge=1, le=3660, description="default 30; 2 by hour")] = None,
    offer: Name = None,
    placement: Name = None,
    channel: Name = None,
    category: Name = None,
    segment: Name = None,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> Any:
    filters = {
        k: v
        for k, v in (
            ("offer", offer),
            ("placement", placement),
            ("channel", channel),
            ("category", category),
            ("segment", segment),
        )
        if v
    }
    db = database(request)
    with db.session() as s:
        deployments.environment(s, name)  # 404, naming the environments, when unknown
    try:
        period = Period.parse(since, until, days or (reports.HOUR_DAYS if by == "hour" else 30))
        with db.engine.connect() as conn:
            rep = reports.report(conn, name, by, period, filters)  # type: ignore[arg-type]
            best, worst = reports.ranked(rep.rows) if by == "offer" else ([], [])
    except ReportError as exc:
        raise ServiceError(str(exc)) from None
    if format == "csv":
        return Response(
            reports.as_csv(rep),
            media_type="text/csv",
            headers={"content-disposition": f'attachment; filename="{name}-{by}.csv"'},
        )
    body = rep.as_dict()
    if by == "offer":
        body["best"] = [r.key for r in best]
        body["worst"] = [r.key for r in worst]
    return body
