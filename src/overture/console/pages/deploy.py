"""Deployments (the plan before deploying, deploy, the numbered history, rollback) and
trying a decision on what an environment runs, with the explanation of every candidate."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from starlette.responses import Response
from starlette.routing import Route

from overture.auth import Permission
from overture.console.pages.home import environments
from overture.console.web import Ctx, action, json_object, number, page
from overture.design import deployments
from overture.design.errors import ServiceError
from overture.engine import DecisionRequest, HistoryEvent, InMemoryHistory, RequestError
from overture.history.counted import every_profile
from overture.history.deployed import LivePlan, NotDeployed, load_deployment, load_live
from overture.history.tables import split_categories
from overture.store.models import Deployment, Environment
from overture.store.profiles import load_profile


@page()
def overview(ctx: Ctx) -> Response:
    envs = environments(ctx)
    if len(envs) == 1:
        return ctx.redirect(f"deployments/{envs[0]['name']}")
    return ctx.render("deployments.html", title="Deployments", environments=envs)


@page()
def environment(ctx: Ctx) -> Response:
    name = ctx.request.path_params["env"]
    try:
        plan = deployments.plan(ctx.session, name)
        history, total = deployments.history(ctx.session, name, limit=50)
    except ServiceError as exc:
        return ctx.render("error.html", status=exc.status, title="Not found", message=exc.detail)
    ctx.choose_environment(name)
    return ctx.render(
        "environment.html",
        title=f"Deploy to {name}",
        env=name,
        plan=plan,
        history=history,
        total=total,
        deployer=ctx.can(Permission.DEPLOY),
        may_force=ctx.can(Permission.FORCE),
        environments=environments(ctx),
    )


@action(Permission.DEPLOY)
def deploy(ctx: Ctx) -> Response:
    name = ctx.request.path_params["env"]
    force = bool(ctx.field("force"))
    try:
        done = deployments.deploy(ctx.session, ctx.actor, name, ctx.field("comment"), force=force)
    except ServiceError as exc:
        return ctx.refused(exc, f"Nothing was deployed to {name}", f"deployments/{name}")
    return ctx.redirect(f"deployments/{name}", done=f"Deployed to {name} as number {done.number}.")


@action(Permission.DEPLOY)
def rollback(ctx: Ctx) -> Response:
    name = ctx.request.path_params["env"]
    to = number(ctx.field("to"), 0)
    try:
        done = deployments.rollback(ctx.session, ctx.actor, name, to, ctx.field("comment"))
    except ServiceError as exc:
        return ctx.refused(exc, f"{name} was not rolled back", f"deployments/{name}")
    return ctx.redirect(
        f"deployments/{name}",
        done=f"{name} runs deployment {to}'s content again, as number {done.number}.",
    )


# -- try a decision ---------------------------------------------------------------------------
_COMPILED: dict[tuple[str, int, str], LivePlan] = {}  # (environment, number, content hash)
_KEEP = 8


def current_plan(ctx: Ctx, env: str) -> LivePlan:
    """The environment's current deployment, compiled once per content (a plan of a
    thousand offers takes about half a second to build; trying decisions one after the
    other must not pay it each time). NotDeployed when there is none."""
    found = ctx.session.execute(
        select(Deployment.number, Deployment.content_hash)
        .join(Environment, Deployment.environment_id == Environment.id)
        .where(Environment.name == env)
        .order_by(Deployment.number.desc())
        .limit(1)
    ).first()
    if found is None:
        return load_live(ctx.db, env)  # says why, in the runtime's words
    key = (env, found.number, found.content_hash)
    if key not in _COMPILED:
        if len(_COMPILED) >= _KEEP:
            _COMPILED.pop(next(iter(_COMPILED)))
        _COMPILED[key] = load_deployment(ctx.db, env, found.number)
    return _COMPILED[key]


def profile_history(
    ctx: Ctx, live: LivePlan, audience: str, profile_id: str, now: dt.datetime
) -> InMemoryHistory:
    """The profile's counted history (history/counted.py), as the runtime would count it."""
    history = InMemoryHistory()
    query = every_profile(live.lookback, live.environment, now, audience=audience)
    if query is None:
        return history
    rows = query.subquery()
    with ctx.db.engine.connect() as conn:
        for row in conn.execute(select(rows).where(rows.c.profile_id == profile_id)):
            history.record(
                HistoryEvent(
                    profile_id,
                    row.kind,
                    row.offer_code or "",
                    split_categories(row.categories),
                    row.channel or "",
                    row.at,
                )
            )
    return history


@page()
def decide(ctx: Ctx) -> Response:
    """Interact's test run, Adobe's simulation for one profile: the decision, every
    candidate's fate, the rendered content; nothing is recorded or counted."""
    envs = [e for e in environments(ctx) if e["number"] is not None]
    deployed = [str(e["name"]) for e in envs]
    env = ctx.field("env") or (ctx.environment if ctx.environment in deployed else "")
    env = env or (deployed[0] if deployed else "")
    values = {
        "env": env,
        "placements": ctx.fields("placement"),
        "profile_id": ctx.field("profile_id"),
        "profile": ctx.field("profile"),
        "context": ctx.field("context"),
        "audience": ctx.field("audience"),
        "now": ctx.field("now"),
    }
    live: LivePlan | None = None
    problems: list[str] = []
    decision = None
    warnings: list[str] = []
    try:
        live = current_plan(ctx, env) if env else None
    except NotDeployed as exc:
        problems.append(str(exc))
    if live is not None and ctx.field("go"):
        try:
            decision, warnings = _decide(ctx, live, values)
        except (ValueError, RequestError) as exc:
            problems.extend(exc.problems if isinstance(exc, RequestError) else [str(exc)])
    placements = list(live.plan.placements) if live else []
    return ctx.render(
        "decide.html",
        title="Try a decision",
        environments=envs,
        values=values,
        live=live,
        placements=placements,
        audiences=list(live.plan.audiences) if live else [],
        decision=decision,
        problems=problems,
        warnings=warnings,
        status=422 if problems and ctx.field("go") else 200,
    )


def _decide(ctx: Ctx, live: LivePlan, values: dict[str, Any]) -> tuple[Any, list[str]]:
    from overture.rules.functions import parse_datetime

    plan = live.plan
    audience = values["audience"] or plan.default_audience
    if audience not in plan.audiences:
        raise ValueError(f"unknown audience {audience!r}; audiences: {', '.join(plan.audiences)}")
    attributes = json_object(values["profile"], "the profile")
    context = json_object(values["context"], "the context")
    profile_id = values["profile_id"].strip() or None
    warnings = []
    if profile_id:
        spec = next(a for a in live.catalog.audiences if a.name == audience)
        found = load_profile(ctx.db, spec, profile_id)
        if found is None:
            warnings.append(
                f"no stored {audience} profile {profile_id!r}: the decision uses the profile sent"
            )
        else:
            attributes = {**found, **attributes}
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if values["now"].strip():
        try:
            now = parse_datetime(values["now"].strip())
        except ValueError:
            raise ValueError(
                f"{values['now']!r} is not a date-time: write 2026-12-24T18:00:00"
            ) from None
        if now.tzinfo is not None:
            now = now.astimezone(dt.UTC).replace(tzinfo=None)
    history = profile_history(ctx, live, audience, profile_id, now) if profile_id else None
    request = DecisionRequest.for_placements(
        values["placements"] or list(plan.placements)[:1],
        audience=audience,
        profile=attributes,
        profile_id=profile_id,
        context=context,
        now=now,
        explain=True,
    )
    return plan.decide(request, history), warnings


routes = [
    Route("/deployments", overview, methods=["GET"]),
    Route("/deployments/{env}", environment, methods=["GET"]),
    Route("/deployments/{env}/deploy", deploy, methods=["POST"]),
    Route("/deployments/{env}/rollback", rollback, methods=["POST"]),
    Route("/decide", decide, methods=["GET"]),
]
