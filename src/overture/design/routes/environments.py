"""Environments, plans, deployments and rollbacks."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from overture.auth import Permission
from overture.design import access, deployments
from overture.design.catalog import Actor
from overture.design.http import PathNumber, database, require
from overture.design.routes.objects import Limit, Offset, Reader
from overture.design.schemas import (
    DeployIn,
    DeploymentDetail,
    DeploymentOut,
    EnvironmentIn,
    EnvironmentOut,
    Page,
    PlanOut,
    RollbackIn,
)
from overture.store.models import Deployment, Environment

router = APIRouter(prefix="/v1/design/environments", tags=["deployments"])
Deployer = Annotated[Actor, Depends(require(Permission.DEPLOY))]


def _environment(session: Any, env: Environment) -> dict[str, Any]:
    current = deployments.current(session, env)
    return {
        "name": env.name,
        "description": env.description,
        "requires": env.requires,
        "current": current.number if current else None,
    }


def _deployment(d: Deployment, with_catalog: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "environment": d.environment.name,
        "number": d.number,
        "content_hash": d.content_hash,
        "comment": d.comment,
        "deployed_by": d.deployed_by,
        "deployed_at": d.deployed_at,
        "forced": d.forced,
        "rollback_of": d.rollback_of,
        "offers": d.offers,
    }
    if with_catalog:
        catalog = deployments.load_snapshot(d.snapshot)
        data["catalog"] = catalog.model_dump(mode="json", exclude_defaults=True)
    return data


@router.get("", response_model=list[EnvironmentOut], summary="List environments")
def list_environments(request: Request, actor: Reader) -> list[dict[str, Any]]:
    with database(request).session() as s:
        return [_environment(s, e) for e in access.list_environments(s)]


@router.post("", response_model=EnvironmentOut, status_code=201, summary="Add an environment")
def create_environment(
    request: Request,
    body: EnvironmentIn,
    actor: Annotated[Actor, Depends(require(Permission.ENVIRONMENTS))],
) -> dict[str, Any]:
    with database(request).session() as s:
        env = access.create_environment(s, actor, body.name, body.description, body.requires)
        return _environment(s, env)


@router.get("/{name}", response_model=EnvironmentOut, summary="An environment")
def get_environment(request: Request, name: str, actor: Reader) -> dict[str, Any]:
    with database(request).session() as s:
        return _environment(s, deployments.environment(s, name))


@router.get(
    "/{name}/plan",
    response_model=PlanOut,
    summary="What deploying now would change, and whether it can",
)
def plan(request: Request, name: str, actor: Reader) -> dict[str, Any]:
    with database(request).session() as s:
        return deployments.plan(s, name)


@router.get(
    "/{name}/deployments",
    response_model=Page[DeploymentOut],
    summary="Deployment history, newest first",
)
def history(
    request: Request, name: str, actor: Reader, limit: Limit = 50, offset: Offset = 0
) -> dict[str, Any]:
    with database(request).session() as s:
        rows, total = deployments.history(s, name, limit, offset)
        return {
            "items": [_deployment(d) for d in rows],
            "total": total,
            "limit": limit,
            "offset": offset,
        }


@router.post(
    "/{name}/deployments",
    response_model=DeploymentOut,
    status_code=201,
    summary="Deploy the approved catalog as the next number",
)
def deploy(
    request: Request, response: Response, name: str, body: DeployIn, actor: Deployer
) -> dict[str, Any]:
    with database(request).session() as s:
        deployment = deployments.deploy(s, actor, name, body.comment, body.force)
        data = _deployment(deployment)
    response.headers["Location"] = f"/v1/design/environments/{name}/deployments/{data['number']}"
    return data


@router.get(
    "/{name}/deployments/{number}",
    response_model=DeploymentDetail,
    summary="One deployment, with its catalog snapshot",
)
def get_deployment(
    request: Request, name: str, number: PathNumber, actor: Reader
) -> dict[str, Any]:
    with database(request).session() as s:
        return _deployment(deployments.get_deployment(s, name, number), with_catalog=True)


@router.post(
    "/{name}/rollback",
    response_model=DeploymentOut,
    status_code=201,
    summary="Deploy an earlier number's snapshot again, as the next number",
)
def rollback(request: Request, name: str, body: RollbackIn, actor: Deployer) -> dict[str, Any]:
    with database(request).session() as s:
        return _deployment(deployments.rollback(s, actor, name, body.to, body.comment))
