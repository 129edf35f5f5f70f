"""The home page: what runs where, what waits for approval, what happened lately; and the
patterns page, every component of the console on one page."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from overture.auth import Permission
from overture.console.web import Ctx, page
from overture.design import audit, offers


def environments(ctx: Ctx) -> list[dict[str, Any]]:
    """Each environment with its current deployment (number, when, by whom), in one query
    that leaves the snapshots in the database."""
    from sqlalchemy import func, select

    from overture.store.models import Deployment, Environment

    latest = (
        select(Deployment.environment_id, func.max(Deployment.number).label("number"))
        .group_by(Deployment.environment_id)
        .subquery()
    )
    query = (
        select(
            Environment.name,
            Environment.description,
            Environment.requires,
            Deployment.number,
            Deployment.deployed_at,
            Deployment.deployed_by,
            Deployment.comment,
            Deployment.offers,
        )
        .outerjoin(latest, latest.c.environment_id == Environment.id)
        .outerjoin(
            Deployment,
            (Deployment.environment_id == Environment.id) & (Deployment.number == latest.c.number),
        )
        .order_by(Environment.id)
    )
    return [
        {
            "name": name,
            "description": description,
            "requires": requires,
            "number": number,
            "at": at,
            "by": by,
            "comment": comment or "",
            "offers": len(offers or {}),
            "offer_codes": list(offers or {}),
        }
        for name, description, requires, number, at, by, comment, offers in ctx.session.execute(
            query
        )
    ]


@page()
def home(ctx: Ctx) -> Response:
    from overture.console.pages.performance import week

    pending, waiting = offers.list_offers(ctx.session, status="pending", limit=20)
    entries = audit.entries(ctx.session, limit=12)[0] if ctx.can(Permission.AUDIT) else []
    return ctx.render(
        "home.html",
        title="Home",
        environments=environments(ctx),
        pending=pending,
        waiting=waiting,
        entries=entries,
        week=week(ctx),
    )


@page()
def patterns(ctx: Ctx) -> Response:
    from overture.console.forms import FormField

    sample = [
        FormField("name", "Name", "text", required=True, help="a letter, then letters or digits"),
        FormField("eligibility", "Eligibility", "rule", help="a rule"),
        FormField("status", "Status", "select", choices=("active", "inactive")),
        FormField("enabled", "Enabled", "checkbox"),
        FormField("themes", "Themes", "list", help="names separated by commas"),
        FormField("content", "Content", "yaml"),
    ]
    return ctx.render(
        "patterns.html",
        title="Patterns",
        sample=sample,
        values={
            "name": "<script>alert(1)</script>",
            "eligibility": "age >= 18 and",
            "enabled": "on",
        },
        errors={"eligibility": ["line 1, column 14: the rule ends too early — finish it"]},
    )


routes = [
    Route("/", home, methods=["GET"], name="home"),
    Route("/patterns", patterns, methods=["GET"], name="patterns"),
]
