"""Offer performance in the console: an overview, and tables and charts by offer,
placement, channel, category, segment, day and hour (history/reports.py computes every
figure; docs/reports.md defines them). On a demo server, a button fills past days with
demo traffic through the runtime's own API."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from overture.auth import Permission
from overture.console.pages.home import environments
from overture.console.web import Ctx, action, number, page
from overture.design import access
from overture.design.catalog import Actor
from overture.history import reports
from overture.history.reports import Period, ReportError
from overture.store import Database

log = logging.getLogger(__name__)
VIEWS = ("offer", "placement", "channel", "category", "segment", "day", "hour")


def _period(ctx: Ctx) -> Period:
    days = min(number(ctx.field("days"), 30) or 30, reports.MAX_DAYS)
    try:
        return Period.parse(ctx.field("since") or None, ctx.field("until") or None, days)
    except ReportError:
        return Period.last(days)


def _deployed(ctx: Ctx) -> list[dict[str, Any]]:
    return [e for e in environments(ctx) if e["number"] is not None]


def _environment(ctx: Ctx, deployed: list[dict[str, Any]]) -> str:
    envs = [str(e["name"]) for e in deployed]
    chosen = ctx.field("env") or ctx.environment
    return chosen if chosen in envs else (envs[0] if envs else ctx.environment)


def _filters(ctx: Ctx) -> dict[str, str]:
    return {f: ctx.field(f) for f in reports.FILTERS if ctx.field(f)}


def _chart(rep: reports.Report) -> dict[str, Any]:
    """What console.js draws: a series per measure, the rate, and the deployments."""
    return {
        "x": [r.key for r in rep.rows],
        "propositions": [r.propositions for r in rep.rows],
        "presented": [r.presented for r in rep.rows],
        "accepted": [r.accepted for r in rep.rows],
        "rate": [None if r.rate is None else round(r.rate * 100, 2) for r in rep.rows],
        "low": [None if r.low is None else round(r.low * 100, 2) for r in rep.rows],
        "high": [None if r.high is None else round(r.high * 100, 2) for r in rep.rows],
        "deployments": rep.deployments,
        "time": rep.by in ("day", "hour"),
    }


@page()
def overview(ctx: Ctx) -> Response:
    deployed = _deployed(ctx)
    env = _environment(ctx, deployed)
    ctx.choose_environment(env)
    period = _period(ctx)
    with ctx.db.engine.connect() as conn:
        by_day = reports.report(conn, env, "day", period, _filters(ctx))
        by_offer = reports.report(conn, env, "offer", period, _filters(ctx))
        best, worst = reports.ranked(by_offer.rows)
        codes = next((sorted(e["offer_codes"]) for e in deployed if e["name"] == env), [])
        never = reports.never_proposed(conn, env, period, codes, _filters(ctx))
    return ctx.render(
        "performance.html",
        title="Performance",
        env=env,
        environments=deployed,
        period=period,
        by="overview",
        views=VIEWS,
        report=by_day,
        offers=by_offer,
        best=best,
        worst=worst,
        never=never,
        chart=_chart(by_day),
        filters=_filters(ctx),
        demo=ctx.request.app.state.demo and ctx.can(Permission.API_KEYS),
        running=_TRAFFIC.get("running", False),
        evidence=reports.EVIDENCE,
    )


@page()
def view(ctx: Ctx) -> Response:
    by = ctx.request.path_params["by"]
    if by not in VIEWS:
        return ctx.not_found(f"no view {by!r}")
    deployed = _deployed(ctx)
    env = _environment(ctx, deployed)
    ctx.choose_environment(env)
    period = _period(ctx)
    if by == "hour" and not ctx.field("since"):
        period = Period.last(reports.HOUR_DAYS)
    try:
        with ctx.db.engine.connect() as conn:
            rep = reports.report(conn, env, by, period, _filters(ctx))
    except ReportError as exc:
        return ctx.render("error.html", status=422, title="Not a report", message=str(exc))
    if ctx.field("format") == "csv":
        return Response(
            reports.as_csv(rep),
            media_type="text/csv",
            headers={"content-disposition": f'attachment; filename="{env}-{by}.csv"'},
        )
    return ctx.render(
        "performance.html",
        title=f"Performance by {by}",
        env=env,
        environments=deployed,
        period=period,
        by=by,
        views=VIEWS,
        report=rep,
        offers=None,
        best=[],
        worst=[],
        never=[],
        chart=_chart(rep),
        filters=_filters(ctx),
        demo=False,
        running=False,
        evidence=reports.EVIDENCE,
    )


def offer_figures(ctx: Ctx, code: str) -> dict[str, Any] | None:
    """An offer's last 30 days in the environment looked at (for its own page)."""
    env = _environment(ctx, _deployed(ctx))
    if not env:
        return None
    period = Period.last(30)
    with ctx.db.engine.connect() as conn:
        rep = reports.report(conn, env, "day", period, {"offer": code})
        by_placement = reports.report(conn, env, "placement", period, {"offer": code})
    if not rep.total.propositions:
        return {"env": env, "report": rep, "placements": by_placement, "chart": None}
    return {"env": env, "report": rep, "placements": by_placement, "chart": _chart(rep)}


def week(ctx: Ctx) -> list[dict[str, Any]]:
    """The last seven days of each deployed environment, for the home page."""
    out = []
    period = Period.last(7)
    with ctx.db.engine.connect() as conn:
        for env in environments(ctx):
            if env["number"] is None:
                continue
            rep = reports.report(conn, str(env["name"]), "offer", period)
            best, _worst = reports.ranked(rep.rows)
            out.append({"env": env["name"], "total": rep.total, "best": best[:3]})
    return out


# -- demo traffic (a demo server only) -------------------------------------------------------
_TRAFFIC: dict[str, Any] = {}  # per process: with several workers, one run each
KEY_NAME = "demo traffic (console)"


@action(Permission.API_KEYS)
def demo_traffic(ctx: Ctx) -> Response:
    if not ctx.request.app.state.demo:
        return ctx.render(
            "error.html",
            status=404,
            title="Not a demo server",
            message="demo traffic is only for a demo server (overture serve --demo "
            "--accept-decision-times, as make demo runs it)",
        )
    env = _environment(ctx, _deployed(ctx))
    days = min(max(number(ctx.field("days"), 14), 1), 60)
    if _TRAFFIC.get("running"):
        return ctx.redirect("performance", done="Demo traffic is already being sent.")
    for key in access.list_api_keys(ctx.session):  # one a run that never ended left behind
        if key.name == KEY_NAME and key.revoked_at is None:
            access.revoke_api_key(ctx.session, ctx.actor, key.id)
    made = access.create_api_key(ctx.session, ctx.actor, env, KEY_NAME)
    ctx.session.commit()
    # this server's own address (the socket the request came in on), never the Host the
    # request names: the key must not travel anywhere else
    host, port = ctx.request.scope.get("server") or ("127.0.0.1", 8000)
    base = f"http://{host}:{port}"
    _TRAFFIC["running"] = True
    threading.Thread(
        target=_send,
        args=(ctx.db, base, made.key, made.record.id, days),
        name="demo-traffic",
        daemon=True,
    ).start()
    return ctx.redirect(
        "performance",
        env=env,
        done=f"Sending {days} days of demo traffic to {env}; reload in a few seconds.",
    )


def _send(db: Database, base: str, key: str, key_id: int, days: int) -> None:
    import httpx

    from overture.demo import profiles
    from overture.demo.traffic import drive

    try:
        customers = profiles.generate(10_000, as_of=profiles.today()).to_pylist()
        with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=30) as client:

            def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
                answer = client.post(path, json=body)
                answer.raise_for_status()
                result: dict[str, Any] = answer.json()
                return result

            drive(post, customers, days=days, seed=int(dt.datetime.now().timestamp()) % 1000)
    finally:
        _TRAFFIC["running"] = False
        try:
            with db.session() as s:
                access.revoke_api_key(s, Actor("console"), key_id)
        except Exception:  # the next run revokes it (KEY_NAME)
            log.exception("could not revoke the demo traffic's key %s", key_id)


routes = [
    Route("/performance", overview, methods=["GET"]),
    Route("/performance/-/demo-traffic", demo_traffic, methods=["POST"]),
    Route("/performance/{by}", view, methods=["GET"]),
]
