"""Offer routes: CRUD and the approval workflow."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from overture.auth import Permission
from overture.catalog.model import Offer
from overture.design import offers as service
from overture.design.catalog import Actor
from overture.design.http import database, if_match, require
from overture.design.routes.objects import Limit, Offset, Reader, out
from overture.design.schemas import Comment, OfferOut, Page, Revision

router = APIRouter(prefix="/v1/design/offers", tags=["offers"])
Author = Annotated[Actor, Depends(require(Permission.AUTHOR))]
Approver = Annotated[Actor, Depends(require(Permission.APPROVE))]


@router.get("", response_model=Page[OfferOut], summary="List offers")
def list_offers(
    request: Request,
    actor: Reader,
    q: str | None = None,
    status: str | None = None,
    category: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    with database(request).session() as s:
        items, total = service.list_offers(
            s, q=q, status=status, category=category, limit=limit, offset=offset
        )
        return {"items": [out(i) for i in items], "total": total, "limit": limit, "offset": offset}


@router.post("", response_model=OfferOut, status_code=201, summary="Create an offer (a draft)")
def create_offer(
    request: Request, response: Response, body: Offer, actor: Author
) -> dict[str, Any]:
    with database(request).session() as s:
        return out(service.create_offer(s, actor, body), response)


@router.get("/{code}", response_model=OfferOut, summary="Get an offer (its head revision)")
def get_offer(request: Request, response: Response, code: str, actor: Reader) -> dict[str, Any]:
    with database(request).session() as s:
        return out(service.get_offer(s, code), response)


@router.put(
    "/{code}",
    response_model=OfferOut,
    summary="Edit an offer (If-Match); an approved one gets a new pending revision",
)
def update_offer(
    request: Request, response: Response, code: str, body: Offer, actor: Author
) -> dict[str, Any]:
    with database(request).session() as s:
        return out(service.update_offer(s, actor, code, body, if_match(request)), response)


@router.delete("/{code}", status_code=204, summary="Delete an offer (If-Match)")
def delete_offer(request: Request, code: str, actor: Author) -> Response:
    with database(request).session() as s:
        service.delete_offer(s, actor, code, if_match(request))
    return Response(status_code=204)


@router.get(
    "/{code}/revisions",
    response_model=list[Revision],
    summary="Every revision, with the approvers' decisions",
)
def revisions(request: Request, code: str, actor: Reader) -> list[dict[str, Any]]:
    with database(request).session() as s:
        return service.revisions(s, code)


@router.post("/{code}/submit", response_model=OfferOut, summary="Submit for approval (If-Match)")
def submit(request: Request, response: Response, code: str, actor: Author) -> dict[str, Any]:
    with database(request).session() as s:
        return out(service.submit(s, actor, code, if_match(request)), response)


@router.post(
    "/{code}/withdraw",
    response_model=OfferOut,
    summary="Take a pending offer back to draft (If-Match)",
)
def withdraw(request: Request, response: Response, code: str, actor: Author) -> dict[str, Any]:
    with database(request).session() as s:
        return out(service.withdraw(s, actor, code, if_match(request)), response)


@router.post(
    "/{code}/approve",
    response_model=OfferOut,
    summary="Approve the pending revision you read (If-Match)",
)
def approve(
    request: Request, response: Response, code: str, actor: Approver, body: Comment | None = None
) -> dict[str, Any]:
    with database(request).session() as s:
        stored = service.approve(s, actor, code, if_match(request), body.comment if body else "")
        return out(stored, response)


@router.post(
    "/{code}/reject",
    response_model=OfferOut,
    summary="Reject the pending revision, saying why (If-Match)",
)
def reject(
    request: Request, response: Response, code: str, body: Comment, actor: Approver
) -> dict[str, Any]:
    with database(request).session() as s:
        return out(service.reject(s, actor, code, if_match(request), body.comment), response)
