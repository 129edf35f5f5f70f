"""The offer catalog: the category tree and the offers, each offer's editor (every field,
live checking, a content preview, the ETag on save), its revisions, and approvals."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from overture.auth import Permission
from overture.catalog import codec
from overture.catalog.model import Category, Offer, Placement, window_end, window_start
from overture.catalog.validate import validate_catalog
from overture.console import forms
from overture.console.pages.catalog import (
    _empty,
    as_yaml,
    side_by_side,
    stale_conflict,
    suggestions,
)
from overture.console.pages.performance import offer_figures
from overture.console.web import Ctx, Refused, action, json_object, number, page
from overture.design import catalog as store
from overture.design import offers
from overture.design.errors import Invalid, NotFound, ServiceError, Stale
from overture.design.kinds import BY_SECTION, OFFERS
from overture.engine import DecisionRequest, RequestError, build_plan
from overture.store.profiles import load_profile

PAGE_SIZE = 50
VALIDITY = ("", "now", "expired", "future")


# -- the category tree and the offer list ------------------------------------------------------
@dataclass
class Node:
    category: Category
    children: list[Node] = field(default_factory=list)
    own: int = 0  # offers directly in it
    total: int = 0  # offers in its subtree


def tree(categories: list[Category], counts: dict[str, int]) -> list[Node]:
    nodes = {c.name: Node(c, own=counts.get(c.name, 0)) for c in categories}
    roots: list[Node] = []
    for node in nodes.values():
        parent = nodes.get(node.category.parent or "")
        (parent.children if parent else roots).append(node)

    def total(node: Node, seen: frozenset[str]) -> int:
        if node.category.name in seen:  # a cycle (refused by validation; never loop)
            return 0
        node.total = node.own + sum(
            total(child, seen | {node.category.name}) for child in node.children
        )
        return node.total

    for root in roots:
        total(root, frozenset())
    return roots


def _subtree(categories: list[Category], name: str) -> set[str]:
    out = {name}
    changed = True
    while changed:
        changed = False
        for c in categories:
            if c.parent in out and c.name not in out:
                out.add(c.name)
                changed = True
    return out


def _validity(offer: Offer, now: dt.datetime) -> str:
    start, end = window_start(offer.start), window_end(offer.end)
    if end is not None and end <= now:
        return "expired"
    if start is not None and start > now:
        return "future"
    return "now"


@page()
def catalog_page(ctx: Ctx) -> Response:
    """The category tree (with counts) and the offers, searched, filtered and paged."""
    categories = [
        s.spec for s in store.list_objects(ctx.session, BY_SECTION["categories"], limit=100_000)[0]
    ]
    placements: list[Placement] = [
        s.spec for s in store.list_objects(ctx.session, BY_SECTION["placements"], limit=100_000)[0]
    ]
    channel_of = {p.name: p.channel for p in placements}
    everything, _total = offers.list_offers(ctx.session, limit=1_000_000)
    counts: dict[str, int] = {}
    for item in everything:
        counts[item.spec.category] = counts.get(item.spec.category, 0) + 1
    q = ctx.field("q").strip().lower()
    status, category = ctx.field("status"), ctx.field("category")
    channel, placement, validity = ctx.field("channel"), ctx.field("placement"), ctx.field("valid")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    within = _subtree(categories, category) if category else None
    chosen = [
        item
        for item in everything
        if (not q or q in item.key.lower() or q in item.spec.name.lower())
        and (not status or item.extra["status"] == status)
        and (within is None or item.spec.category in within)
        and (not placement or placement in item.spec.placements)
        and (not channel or any(channel_of.get(p) == channel for p in item.spec.placements))
        and (not validity or _validity(item.spec, now) == validity)
    ]
    offset = number(ctx.field("offset"), 0)
    return ctx.render(
        "catalog.html",
        title="Catalog",
        roots=tree(categories, counts),
        offers=chosen[offset : offset + PAGE_SIZE],
        total=len(chosen),
        offset=offset,
        limit=PAGE_SIZE,
        filters={
            "q": ctx.field("q"),
            "status": status,
            "category": category,
            "channel": channel,
            "placement": placement,
            "valid": validity,
        },
        statuses=offers.STATUSES,
        channels=sorted({p.channel for p in placements}),
        placements=[p.name for p in placements],
        categories=[c.name for c in categories],
        validities=VALIDITY,
        validity_of=lambda o: _validity(o, now),
        writable=ctx.can(Permission.AUTHOR),
    )


# -- the editor --------------------------------------------------------------------------------
def _editor(
    ctx: Ctx,
    *,
    code: str | None,
    values: dict[str, str],
    version: int | None,
    stored: Any = None,
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
    conflict: Any = None,
    preview: dict[str, Any] | None = None,
) -> Response:
    placements = [
        s.spec for s in store.list_objects(ctx.session, BY_SECTION["placements"], limit=100_000)[0]
    ]
    audiences = [
        s.spec for s in store.list_objects(ctx.session, BY_SECTION["audiences"], limit=1000)[0]
    ]
    return ctx.render(
        "offer.html",
        status=status,
        title=f"Offer {code}" if code else "New offer",
        code=code,
        kind=OFFERS,
        fields=forms.fields_of(OFFERS),
        values=values,
        version=version,
        stored=stored,
        errors=errors or {},
        conflict=conflict,
        preview=preview,
        preview_form={
            "placements": ctx.fields("_preview_placement"),
            "profile_id": ctx.field("_preview_profile_id"),
            "profile": ctx.field("_preview_profile"),
            "context": ctx.field("_preview_context"),
        },
        placements=placements,
        audiences=audiences,
        suggestions=suggestions(ctx, OFFERS),
        examples=forms.EXAMPLES,
        writable=ctx.can(Permission.AUTHOR),
        approver=ctx.can(Permission.APPROVE),
        figures=offer_figures(ctx, code) if code and stored is not None else None,
    )


@page()
def new_offer(ctx: Ctx) -> Response:
    ctx.need(Permission.AUTHOR)
    values = forms.defaults_of(OFFERS)
    if ctx.field("category"):
        values["category"] = ctx.field("category")
    return _editor(ctx, code=None, values=values, version=None)


@page()
def show_offer(ctx: Ctx) -> Response:
    code = ctx.request.path_params["code"]
    try:
        stored = offers.get_offer(ctx.session, code)
    except NotFound as exc:
        return ctx.not_found(exc.detail)
    return _editor(
        ctx,
        code=code,
        values=forms.values_of(OFFERS, stored.spec),
        version=stored.version,
        stored=stored,
    )


def _form_values(ctx: Ctx) -> dict[str, str]:
    return {f.name: ctx.field(f.name) for f in forms.fields_of(OFFERS)}


@action(Permission.AUTHOR)
def save_offer(ctx: Ctx) -> Response:
    code = ctx.request.path_params.get("code")
    parsed = forms.parse(OFFERS, ctx.form or _empty(), key=code)
    values = _form_values(ctx)
    version = number(ctx.field("version"), 0) if code else None
    try:
        stored_now = offers.get_offer(ctx.session, code) if code else None
    except NotFound as exc:  # deleted meanwhile (in another browser)
        return ctx.not_found(exc.detail)
    spec = forms.validate(OFFERS, parsed)
    if spec is None:
        return _editor(
            ctx,
            code=code,
            values=values,
            version=version,
            stored=stored_now,
            errors=parsed.errors,
            status=422,
        )
    assert isinstance(spec, Offer)
    try:
        if code is None:
            saved = offers.create_offer(ctx.session, ctx.actor, spec)
        else:
            saved = offers.update_offer(ctx.session, ctx.actor, code, spec, version)
    except Stale:
        ctx.session.rollback()
        current = offers.get_offer(ctx.session, code or "")
        conflict = stale_conflict(current, spec)
        return _editor(
            ctx,
            code=code,
            values=values,
            version=current.version,
            stored=current,
            status=409,
            conflict=conflict,
        )
    except Invalid as exc:
        ctx.session.rollback()
        errors = dict(parsed.errors)
        forms.place_errors(OFFERS, code or spec.code, exc.extensions.get("errors", []), errors)
        return _editor(
            ctx,
            code=code,
            values=values,
            version=version,
            stored=stored_now,
            errors=errors,
            status=422,
        )
    except ServiceError as exc:
        ctx.session.rollback()
        return _editor(
            ctx,
            code=code,
            values=values,
            version=version,
            stored=stored_now,
            errors={"": [exc.detail]},
            status=exc.status,
        )
    note = f" Warnings: {'; '.join(w['message'] for w in saved.warnings)}" if saved.warnings else ""
    return ctx.redirect(
        f"offers/{saved.key}",
        done=f"Offer {saved.key} saved (revision {saved.extra['revision']}, "
        f"{saved.extra['status']}).{note}",
    )


# -- preview -----------------------------------------------------------------------------------
def _audience_of(catalog: Any, offer: Offer) -> str | None:
    by_name = {c.name: c for c in catalog.categories}
    name: str | None = offer.category
    seen: set[str] = set()
    while name and name not in seen:
        seen.add(name)
        category = by_name.get(name)
        if category is None:
            return None
        if category.audience:
            return str(category.audience)
        name = category.parent
    return None


def run_preview(ctx: Ctx, code: str | None) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The content of the offer in the form on the chosen placements, for the chosen
    profile: ({placement: content or why not}, form errors)."""
    parsed = forms.parse(OFFERS, ctx.form or _empty(), key=code)
    spec = forms.validate(OFFERS, parsed)
    if spec is None:
        return {}, parsed.errors
    assert isinstance(spec, Offer)
    draft = store.load_draft(ctx.session)
    draft.sections["offers"][spec.code] = codec.plain(spec)
    catalog = draft.catalog()
    report = validate_catalog(catalog)
    if report.errors:
        errors = dict(parsed.errors)
        forms.place_errors(OFFERS, spec.code, store.describe(report.errors, catalog), errors)
        return {}, errors
    chosen = ctx.fields("_preview_placement") or list(spec.placements)
    if not chosen:
        return {}, {"": ["choose a placement to preview the content on"]}
    try:
        attributes = json_object(ctx.field("_preview_profile"), "the profile")
        context = json_object(ctx.field("_preview_context"), "the context")
    except ValueError as exc:
        return {}, {"_preview": [str(exc)]}
    audience_name = _audience_of(catalog, spec)
    audience = next(
        (a for a in catalog.audiences if a.name == audience_name),
        catalog.audiences[0] if catalog.audiences else None,
    )
    profile_id = ctx.field("_preview_profile_id").strip() or None
    if profile_id and audience is not None:
        found = load_profile(ctx.db, audience, profile_id)
        if found is None:
            return {}, {"_preview": [f"no stored {audience.name} profile {profile_id!r}"]}
        attributes = {**found, **attributes}
    plan = build_plan(catalog, validated=True)
    try:
        return plan.preview(
            DecisionRequest.for_placements(
                chosen,
                audience=audience.name if audience else None,
                profile=attributes,
                profile_id=profile_id,
                context=context,
            ),
            spec.code,
        ), {}
    except RequestError as exc:
        return {}, {"_preview": exc.problems}


@action(Permission.AUTHOR)  # it renders templates from the form over stored profiles
def preview(ctx: Ctx) -> Response:
    code = ctx.request.path_params.get("code")
    result, errors = run_preview(ctx, code)
    ctx.session.rollback()
    if "application/json" in ctx.request.headers.get("accept", ""):
        return JSONResponse({"preview": result, "errors": errors})
    try:
        stored = offers.get_offer(ctx.session, code) if code else None
    except NotFound as exc:
        return ctx.not_found(exc.detail)
    return _editor(
        ctx,
        code=code,
        values=_form_values(ctx),
        version=number(ctx.field("version"), 0) if code else None,
        stored=stored,
        errors=errors,
        preview=result,
        status=422 if errors else 200,
    )


# -- the workflow ------------------------------------------------------------------------------
TRANSITIONS = {
    "submit": (Permission.AUTHOR, "submitted for approval"),
    "withdraw": (Permission.AUTHOR, "withdrawn: a draft again"),
    "approve": (Permission.APPROVE, "approved"),
    "reject": (Permission.APPROVE, "rejected"),
    "delete": (Permission.AUTHOR, "deleted"),
}


@action(Permission.READ)
def transition(ctx: Ctx) -> Response:
    code = ctx.request.path_params["code"]
    step = ctx.request.path_params["step"]
    if step not in TRANSITIONS:
        raise Refused(f"there is no action {step!r} on offers")
    permission, said = TRANSITIONS[step]
    ctx.need(permission)
    version = number(ctx.field("version"), 0)
    comment = ctx.field("comment")
    back = ctx.field("back") or f"offers/{code}"
    try:
        if step == "submit":
            offers.submit(ctx.session, ctx.actor, code, version)
        elif step == "withdraw":
            offers.withdraw(ctx.session, ctx.actor, code, version)
        elif step == "approve":
            offers.approve(ctx.session, ctx.actor, code, version, comment or None)
        elif step == "reject":
            offers.reject(ctx.session, ctx.actor, code, version, comment)
        else:
            offers.delete_offer(ctx.session, ctx.actor, code, version)
            return ctx.redirect("catalog", done=f"Offer {code} deleted.")
    except ServiceError as exc:
        return ctx.refused(exc, f"Offer {code} was not {said.split(':')[0]}", back)
    return ctx.redirect(back, done=f"Offer {code} {said}.")


@action(Permission.READ)
def bulk(ctx: Ctx) -> Response:
    """Submit (offer managers) or approve (approvers) several offers at once: each is the
    same transition as its own button, at the version the page showed; those that fail
    say why, the others are done."""
    step = ctx.request.path_params["step"]
    if step not in ("submit", "approve"):
        raise Refused(f"there is no bulk action {step!r}; submit or approve")
    permission, said = TRANSITIONS[step]
    ctx.need(permission)
    done, failed = [], []
    for item in ctx.fields("offer"):
        code, _, version = item.rpartition(":")
        try:
            with ctx.session.begin_nested():
                if step == "submit":
                    offers.submit(ctx.session, ctx.actor, code, number(version, 0))
                else:
                    offers.approve(
                        ctx.session,
                        ctx.actor,
                        code,
                        number(version, 0),
                        ctx.field("comment") or None,
                    )
            done.append(code)
        except ServiceError as exc:
            failed.append(f"{code}: {exc.detail}")
    back = ctx.field("back") or "catalog"
    message = f"{len(done)} offer(s) {said}." + (
        f" {len(failed)} not: {'; '.join(failed[:5])}" if failed else ""
    )
    return ctx.redirect(back, done=message)


@page()
def revisions(ctx: Ctx) -> Response:
    code = ctx.request.path_params["code"]
    try:
        items = offers.revisions(ctx.session, code)
    except NotFound as exc:
        return ctx.not_found(exc.detail)
    numbers = [r["revision"] for r in items]
    b = number(ctx.field("b"), numbers[-1]) if numbers else 0
    a = number(ctx.field("a"), numbers[-2] if len(numbers) > 1 else b)
    by_number = {r["revision"]: r for r in items}
    difference = None
    if a in by_number and b in by_number:
        difference = side_by_side(
            as_yaml(by_number[a]["spec"]),
            as_yaml(by_number[b]["spec"]),
            f"revision {a} ({by_number[a]['status']})",
            f"revision {b} ({by_number[b]['status']})",
        )
    return ctx.render(
        "revisions.html",
        title=f"Offer {code}: revisions",
        code=code,
        items=list(reversed(items)),
        numbers=numbers,
        a=a,
        b=b,
        difference=difference,
    )


@page()
def approvals(ctx: Ctx) -> Response:
    """The offers waiting, each with its difference from the approved revision."""
    pending, total = offers.list_offers(ctx.session, status="pending", limit=200)
    waiting = []
    for item in pending:
        history = offers.revisions(ctx.session, item.key)
        approved = next((r for r in history if r["approved"]), None)
        head = next(r for r in history if r["head"])
        waiting.append(
            {
                "offer": item,
                "submitted_by": head["submitted_by"],
                "submitted_at": head["submitted_at"],
                "difference": side_by_side(
                    as_yaml(approved["spec"]) if approved else "",
                    as_yaml(head["spec"]),
                    f"approved: revision {approved['revision']}" if approved else "never approved",
                    f"waiting: revision {head['revision']}",
                ),
            }
        )
    return ctx.render(
        "approvals.html",
        title="Approvals",
        waiting=waiting,
        total=total,
        approver=ctx.can(Permission.APPROVE),
    )


routes = [
    Route("/catalog", catalog_page, methods=["GET"]),
    # actions that are not an offer sit under "-", which no offer code can be
    Route("/offers/-/new", new_offer, methods=["GET"]),
    Route("/offers", save_offer, methods=["POST"]),
    Route("/offers/-/preview", preview, methods=["POST"]),
    Route("/offers/-/bulk/{step}", bulk, methods=["POST"]),
    Route("/offers/{code}", show_offer, methods=["GET"]),
    Route("/offers/{code}", save_offer, methods=["POST"]),
    Route("/offers/{code}/preview", preview, methods=["POST"]),
    Route("/offers/{code}/revisions", revisions, methods=["GET"]),
    Route("/offers/{code}/{step}", transition, methods=["POST"]),
    Route("/approvals", approvals, methods=["GET"]),
]
