"""Catalog objects other than offers: channels, zones, placements, categories, segments,
treatment rules, presentation policies and audiences. One list page and one form per
kind, made from the kind's model (forms.py); the same service functions as the design
API, so an object is checked the same way everywhere."""

from __future__ import annotations

import difflib
from typing import Any

import yaml
from markupsafe import Markup, escape
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from overture.auth import Permission
from overture.catalog import codec
from overture.console import forms
from overture.console.web import Ctx, Refused, action, number, page, problems
from overture.design import catalog as store
from overture.design.catalog import check_change
from overture.design.errors import Conflict, Invalid, NotFound, ServiceError, Stale
from overture.design.kinds import BY_SECTION, NAMED_KINDS, OFFERS, CatalogSettings, Kind

KINDS = {k.path: k for k in NAMED_KINDS}
PAGE_SIZE = 50


def kind_of(path: str) -> Kind:
    kind = KINDS.get(path)
    if kind is None:
        raise Refused(f"there is no kind of object {path!r}")
    return kind


def keys_of(ctx: Ctx, section: str) -> list[str]:
    """The keys of a section, for the suggestions of a reference field."""
    if section == "offers":
        from overture.design import offers

        return [o.key for o in offers.list_offers(ctx.session, limit=10_000)[0]]
    return [o.key for o in store.list_objects(ctx.session, BY_SECTION[section], limit=10_000)[0]]


def suggestions(ctx: Ctx, kind: Kind) -> dict[str, list[str]]:
    sections = {f.reference for f in forms.fields_of(kind) if f.reference}
    return {section: keys_of(ctx, section) for section in sorted(s for s in sections if s)}


def side_by_side(before: str, after: str, left: str, right: str) -> Markup:
    """Two texts side by side, differences marked (difflib escapes the text)."""
    table = difflib.HtmlDiff(wrapcolumn=70).make_table(
        before.splitlines(),
        after.splitlines(),
        str(escape(left)),
        str(escape(right)),
        context=False,
    )  # (HtmlDiff escapes the lines, not the headers)
    # HtmlDiff escapes &, < and >, and writes spaces as &nbsp;: plain spaces (kept by the
    # CSS) copy and wrap better
    return Markup(table.replace("&nbsp;", " "))


def stale_conflict(current: Any, spec: Any) -> Markup:
    """What was saved since the form was opened (`current`: the stored object, with
    version and author) beside the change that could not be saved (`spec`)."""
    return side_by_side(
        as_yaml(codec.plain(current.spec)),
        as_yaml(codec.plain(spec)),
        f"saved meanwhile (version {current.version}, by {current.updated_by})",
        "your change (not saved)",
    )


def as_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


@page()
def list_objects(ctx: Ctx) -> Response:
    kind = kind_of(ctx.request.path_params["kind"])
    q = ctx.field("q")
    offset = number(ctx.field("offset"), 0)
    items, total = store.list_objects(
        ctx.session, kind, q=q or None, limit=PAGE_SIZE, offset=offset
    )
    return ctx.render(
        "objects.html",
        title=kind.path.replace("-", " ").capitalize(),
        kind=kind,
        items=items,
        total=total,
        offset=offset,
        limit=PAGE_SIZE,
        q=q,
        writable=ctx.can(kind.write),
        kinds=NAMED_KINDS,
    )


def _form(
    ctx: Ctx,
    kind: Kind,
    *,
    key: str | None,
    values: dict[str, str],
    version: int | None,
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
    conflict: Markup | None = None,
    stored: Any = None,
) -> Response:
    return ctx.render(
        "object.html",
        status=status,
        title=f"{kind.singular.capitalize()} {key}" if key else f"New {kind.singular}",
        kind=kind,
        key=key,
        fields=forms.fields_of(kind),
        values=values,
        version=version,
        errors=errors or {},
        writable=ctx.can(kind.write),
        suggestions=suggestions(ctx, kind),
        conflict=conflict,
        stored=stored,
        examples=forms.EXAMPLES,
        touchpoint=touchpoint_examples(ctx, kind, key, stored),
    )


@page()
def new_object(ctx: Ctx) -> Response:
    kind = kind_of(ctx.request.path_params["kind"])
    ctx.need(kind.write)
    return _form(ctx, kind, key=None, values=forms.defaults_of(kind), version=None)


@page()
def show_object(ctx: Ctx) -> Response:
    kind = kind_of(ctx.request.path_params["kind"])
    key = ctx.request.path_params["key"]
    try:
        stored = store.get_object(ctx.session, kind, key)
    except NotFound as exc:
        return ctx.not_found(exc.detail)
    return _form(
        ctx,
        kind,
        key=key,
        values=forms.values_of(kind, stored.spec),
        version=stored.version,
        stored=stored,
    )


@action(None)
def save_object(ctx: Ctx) -> Response:
    """Create (no key in the path) or replace an object; on a refusal, the form again with
    every problem beside its field; on a stale version, the difference with what is stored."""
    kind = kind_of(ctx.request.path_params["kind"])
    ctx.need(kind.write)
    key = ctx.request.path_params.get("key")
    parsed = forms.parse(kind, ctx.form or _empty(), key=key)
    values = {f.name: ctx.field(f.name) for f in forms.fields_of(kind)}
    version = number(ctx.field("version"), 0) if key else None
    spec = forms.validate(kind, parsed)
    if spec is None:
        return _form(
            ctx, kind, key=key, values=values, version=version, errors=parsed.errors, status=422
        )
    try:
        if key is None:
            stored = store.create_object(ctx.session, ctx.actor, kind, spec)
        else:
            stored = store.update_object(ctx.session, ctx.actor, kind, key, spec, version=version)
    except Stale:
        ctx.session.rollback()
        current = store.get_object(ctx.session, kind, key or "")
        conflict = stale_conflict(current, spec)
        return _form(
            ctx,
            kind,
            key=key,
            values=values,
            version=current.version,
            status=409,
            conflict=conflict,
            stored=current,
        )
    except Invalid as exc:
        ctx.session.rollback()
        errors = dict(parsed.errors)
        forms.place_errors(kind, key or kind.key_of(spec), exc.extensions.get("errors", []), errors)
        return _form(ctx, kind, key=key, values=values, version=version, errors=errors, status=422)
    except ServiceError as exc:
        ctx.session.rollback()
        return _form(
            ctx,
            kind,
            key=key,
            values=values,
            version=version,
            errors={"": [exc.detail]},
            status=exc.status,
        )
    what = "saved" if key else "created"
    warning = (
        f" Warnings: {'; '.join(w['message'] for w in stored.warnings)}" if stored.warnings else ""
    )
    return ctx.redirect(
        f"objects/{kind.path}/{stored.key}",
        done=f"{kind.singular.capitalize()} {stored.key} {what}.{warning}",
    )


@action(None)
def delete_object(ctx: Ctx) -> Response:
    kind = kind_of(ctx.request.path_params["kind"])
    ctx.need(kind.write)
    key = ctx.request.path_params["key"]
    try:
        store.delete_object(ctx.session, ctx.actor, kind, key, number(ctx.field("version"), 0))
    except (Invalid, Conflict, NotFound) as exc:
        title = f"{kind.singular.capitalize()} {key} was not deleted"
        return ctx.refused(exc, title, f"objects/{kind.path}/{key}")
    return ctx.redirect(f"objects/{kind.path}", done=f"{kind.singular.capitalize()} {key} deleted.")


def _empty() -> Any:
    from starlette.datastructures import FormData

    return FormData()


@action(Permission.READ)
def check(ctx: Ctx) -> Response:
    """Live checking: the problems a save of this form would meet, by field (JSON)."""
    section = ctx.request.path_params["kind"]
    kind = OFFERS if section == "offers" else kind_of(section)
    key = ctx.field("_key") or None
    parsed = forms.parse(kind, ctx.form or _empty(), key=key)
    spec = forms.validate(kind, parsed)
    warnings: list[str] = []
    if spec is not None:
        object_key = kind.key_of(spec)
        data = codec.plain(spec)
        try:
            found = check_change(
                ctx.session,
                lambda d: d.sections[kind.section].__setitem__(object_key, data),
                (kind.section, object_key),
            )
            warnings = [w["message"] for w in found]
        except Invalid as exc:
            forms.place_errors(kind, object_key, exc.extensions.get("errors", []), parsed.errors)
    ctx.session.rollback()
    return JSONResponse({"errors": parsed.errors, "warnings": warnings})


SETTINGS = Kind("settings", "settings", "catalog settings", CatalogSettings, Permission.SETUP)


@page()
def settings(ctx: Ctx) -> Response:
    """The catalog-wide part: its name, default score, context fields, offer attributes."""
    stored = store.get_settings(ctx.session)
    return _settings_form(ctx, forms.values_of(SETTINGS, stored.spec), stored.version, stored)


def _settings_form(
    ctx: Ctx,
    values: dict[str, str],
    version: int,
    stored: Any,
    *,
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
) -> Response:
    return ctx.render(
        "settings.html",
        status=status,
        title="Catalog settings",
        kind=SETTINGS,
        fields=forms.fields_of(SETTINGS),
        values=values,
        version=version,
        stored=stored,
        errors=errors or {},
        writable=ctx.can(Permission.SETUP),
        examples=forms.EXAMPLES,
        kinds=NAMED_KINDS,
    )


@action(Permission.SETUP)
def save_settings(ctx: Ctx) -> Response:
    parsed = forms.parse(SETTINGS, ctx.form or _empty())
    values = {f.name: ctx.field(f.name) for f in forms.fields_of(SETTINGS)}
    version = number(ctx.field("version"), 0)
    spec = forms.validate(SETTINGS, parsed)
    current = store.get_settings(ctx.session)
    if spec is None:
        return _settings_form(ctx, values, version, current, errors=parsed.errors, status=422)
    assert isinstance(spec, CatalogSettings)
    try:
        store.update_settings(ctx.session, ctx.actor, spec, version)
    except Stale:
        ctx.session.rollback()
        current = store.get_settings(ctx.session)
        return _settings_form(
            ctx,
            values,
            current.version,
            current,
            errors={
                "": [
                    f"someone else changed the settings meanwhile (now version {current.version})"
                    ": save again to replace theirs with yours"
                ]
            },
            status=409,
        )
    except ServiceError as exc:
        ctx.session.rollback()
        return _settings_form(
            ctx,
            values,
            version,
            current,
            errors={"": [exc.detail, *problems(exc)]},
            status=exc.status,
        )
    return ctx.redirect("settings", done="Catalog settings saved.")


def touchpoint_examples(ctx: Ctx, kind: Kind, key: str | None, stored: Any) -> dict[str, str]:
    """What a touchpoint sends, for channels and placements: copyable example requests
    (docs/runtime.md). Names are sent as written here (events ignoring case)."""
    if key is None or stored is None or kind.section not in ("placements", "channels"):
        return {}
    base = str(ctx.request.base_url).split("/console")[0].rstrip("/")
    key_header = '-H "X-API-Key: $OVERTURE_API_KEY"'
    if kind.section == "placements":
        body = {"profile_id": "C0000042", "placements": [{"placement": key}]}
        servlet = {
            "sessionId": "visit-1",
            "commands": [
                {
                    "action": "startSession",
                    "ic": stored.spec.channel,
                    "audienceLevel": "customer",
                    "audienceID": [{"n": "customer_id", "v": "C0000042", "t": "string"}],
                    "relyOnExistingSession": False,
                    "debug": False,
                    "parameters": [],
                },
                {"action": "getOffers", "ip": key, "numberRequested": 1},
            ],
        }
        return {
            "Decide (REST)": f"curl -s {base}/v1/decisions {key_header} -d '{_json(body)}'",
            "Interact servlet": f"curl -s {base}/interact/servlet/RestServlet {key_header} "
            f"-d '{_json(servlet)}'",
        }
    events = stored.spec.events
    accepted = events.accepted[0] if events.accepted else "accepted"
    event = {"name": accepted, "tracking_code": "<tracking_code from the decision>"}
    return {
        "Channel name (Interact's ic)": key,
        "Presentation events": ", ".join(events.presented),
        "Acceptance events": ", ".join(events.accepted),
        "Rejection events": ", ".join(events.rejected),
        "Post an event (REST)": f"curl -s {base}/v1/events {key_header} -d '{_json(event)}'",
    }


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


routes = [
    Route("/objects/{kind}", list_objects, methods=["GET"]),
    Route("/objects/{kind}", save_object, methods=["POST"]),
    Route("/objects/{kind}/-/new", new_object, methods=["GET"]),  # no name can be "-"
    Route("/objects/{kind}/{key}", show_object, methods=["GET"]),
    Route("/objects/{kind}/{key}", save_object, methods=["POST"]),
    Route("/objects/{kind}/{key}/delete", delete_object, methods=["POST"]),
    Route("/check/{kind}", check, methods=["POST"]),
    Route("/settings", settings, methods=["GET"]),
    Route("/settings", save_settings, methods=["POST"]),
]
