"""Login, operators and API keys."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from overture.auth import Permission
from overture.design import access
from overture.design.catalog import Actor
from overture.design.errors import Forbidden
from overture.design.http import PathNumber, database, require
from overture.design.schemas import (
    ApiKeyCreated,
    ApiKeyIn,
    ApiKeyOut,
    LoginIn,
    LoginOut,
    OperatorIn,
    OperatorOut,
    OperatorPatch,
    PasswordIn,
)
from overture.store.models import ApiKey, Operator

auth = APIRouter(prefix="/v1/design/auth", tags=["auth"])
operators = APIRouter(prefix="/v1/design/operators", tags=["operators"])
api_keys = APIRouter(prefix="/v1/design/api-keys", tags=["api keys"])
Self = Annotated[Actor, Depends(require(Permission.SELF))]
Admin = Annotated[Actor, Depends(require(Permission.OPERATORS))]
KeyAdmin = Annotated[Actor, Depends(require(Permission.API_KEYS))]


def _operator(op: Operator) -> dict[str, Any]:
    return {
        "name": op.name,
        "roles": sorted(op.role_names),
        "disabled": op.disabled,
        "created_at": op.created_at,
    }


def _key(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "environment": key.environment.name,
        "prefix": key.prefix,
        "created_by": key.created_by,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
    }


def _address(request: Request) -> str:
    """Where a password came from, as login throttling counts it (uvicorn gives the
    forwarding proxy's client when the proxy is trusted: FORWARDED_ALLOW_IPS)."""
    return request.client.host if request.client else ""


@auth.post("/login", response_model=LoginOut, summary="Log in: a bearer token with an expiry")
def login(request: Request, body: LoginIn) -> dict[str, Any]:
    with database(request).session() as s:
        result = access.login(s, body.name, body.password, address=_address(request))
    return {
        "token": result.token,
        "expires_at": result.expires_at,
        "operator": result.operator,
        "roles": result.roles,
    }


@auth.post("/logout", status_code=204, summary="Revoke this token")
def logout(request: Request, actor: Self) -> Response:
    with database(request).session() as s:
        access.logout(s, request.state.token)
    return Response(status_code=204)


@auth.get("/me", response_model=OperatorOut, summary="Who the token belongs to")
def me(request: Request, actor: Self) -> dict[str, Any]:
    with database(request).session() as s:
        return _operator(access.operator(s, actor.name))


@auth.put("/password", status_code=204, summary="Change my password (ends my other sessions)")
def change_password(request: Request, body: PasswordIn, actor: Self) -> Response:
    with database(request).session() as s:
        try:  # the current password is checked as a login's is: throttled and audited
            access.check_password(s, actor.name, body.current, _address(request))
        except access.LoginFailed:
            raise Forbidden("the current password is wrong") from None
        access.update_operator(
            s, actor, actor.name, password=body.new, keep_token=request.state.token
        )
    return Response(status_code=204)


@operators.get("", response_model=list[OperatorOut], summary="List operators")
def list_operators(request: Request, actor: Admin) -> list[dict[str, Any]]:
    with database(request).session() as s:
        return [_operator(op) for op in access.list_operators(s)]


@operators.post("", response_model=OperatorOut, status_code=201, summary="Add an operator")
def create_operator(request: Request, body: OperatorIn, actor: Admin) -> dict[str, Any]:
    with database(request).session() as s:
        return _operator(access.create_operator(s, actor, body.name, body.password, body.roles))


@operators.get("/{name}", response_model=OperatorOut, summary="An operator")
def get_operator(request: Request, name: str, actor: Admin) -> dict[str, Any]:
    with database(request).session() as s:
        return _operator(access.operator(s, name))


@operators.patch(
    "/{name}",
    response_model=OperatorOut,
    summary="Change roles, disable, or set a password (ends their sessions)",
)
def update_operator(
    request: Request, name: str, body: OperatorPatch, actor: Admin
) -> dict[str, Any]:
    with database(request).session() as s:
        return _operator(
            access.update_operator(
                s, actor, name, roles=body.roles, disabled=body.disabled, password=body.password
            )
        )


@api_keys.get("", response_model=list[ApiKeyOut], summary="List runtime API keys")
def list_keys(request: Request, actor: KeyAdmin) -> list[dict[str, Any]]:
    with database(request).session() as s:
        return [_key(k) for k in access.list_api_keys(s)]


@api_keys.post(
    "",
    response_model=ApiKeyCreated,
    status_code=201,
    summary="Create a runtime API key for one environment (shown once)",
)
def create_key(request: Request, body: ApiKeyIn, actor: KeyAdmin) -> dict[str, Any]:
    with database(request).session() as s:
        new = access.create_api_key(s, actor, body.environment, body.name)
        return {**_key(new.record), "key": new.key}


@api_keys.delete("/{key_id}", status_code=204, summary="Revoke a runtime API key")
def revoke_key(request: Request, key_id: PathNumber, actor: KeyAdmin) -> Response:
    with database(request).session() as s:
        access.revoke_api_key(s, actor, key_id)
    return Response(status_code=204)
