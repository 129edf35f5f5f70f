"""The catalog as the design environment stores it: CRUD for named objects and settings,
assembling whole catalogs (the head being edited, or the approved one to deploy), and
checking each change against the whole catalog.

The head catalog is kept valid: a change that would introduce an error is refused with
every error it introduces, located by object key (`offers[CC-GOLD].eligibility:1:5`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from overture.catalog import codec
from overture.catalog.issues import Issue
from overture.catalog.model import Catalog
from overture.catalog.validate import validate_catalog
from overture.design import audit
from overture.design.errors import (
    Conflict,
    Invalid,
    NotFound,
    PreconditionRequired,
    ServiceError,
    Stale,
)
from overture.design.kinds import BY_SECTION, NAMED_KINDS, CatalogSettings, Kind
from overture.store.models import CATALOG_TABLES, CatalogSettingsRow, Lock, OfferRow, utcnow

SECTIONS = tuple(k.section for k in NAMED_KINDS)


@dataclass(frozen=True)
class Actor:
    """Who is acting (for the audit log) and with which roles."""

    name: str
    roles: frozenset[str] = frozenset()


SpecT = TypeVar("SpecT", bound=BaseModel)


@dataclass(frozen=True)
class Stored(Generic[SpecT]):
    """An object as stored: its definition plus version and provenance."""

    kind: str
    key: str
    version: int
    spec: SpecT
    created_at: dt.datetime | None = None
    created_by: str | None = None
    updated_at: dt.datetime | None = None
    updated_by: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    warnings: list[dict[str, Any]] = field(default_factory=list)


# -- drafts: a whole catalog as plain data, to apply a change to and validate ---------------
@dataclass
class Draft:
    """A catalog as plain data: settings, and each section as key -> definition, in order."""

    settings: dict[str, Any]
    sections: dict[str, dict[str, dict[str, Any]]]

    def catalog(self) -> Catalog:
        data = dict(self.settings)
        for section, objects in self.sections.items():
            data[section] = list(objects.values())
        return Catalog.model_validate(data)


def lock_catalog(session: Session) -> None:
    """Wait for the catalog writers' turn, held until this transaction ends. Every change is
    validated against the whole catalog, so it must be the first statement of a change:
    what the change then reads is what it commits on top of. (Two changes each valid alone,
    such as deleting a category while adding an offer in it, can then never both commit.)"""
    session.execute(update(Lock).where(Lock.name == "catalog").values(counter=Lock.counter + 1))


def load_draft(session: Session, approved: bool = False) -> Draft:
    """The head catalog (being edited) or, with approved=True, what may be deployed: the
    approved revision of each offer (offers never approved are left out)."""
    row = session.get(CatalogSettingsRow, 1)
    settings = codec.load(row.body) if row else {}
    sections: dict[str, dict[str, dict[str, Any]]] = {}
    for section in SECTIONS:
        table = CATALOG_TABLES[section]
        rows = session.scalars(select(table).order_by(table.position, table.id))
        sections[section] = {r.name: codec.load(r.body) for r in rows}
    offers: dict[str, dict[str, Any]] = {}
    for offer in session.scalars(select(OfferRow).order_by(OfferRow.position, OfferRow.id)):
        revision = offer.approved if approved else offer.head
        if revision is not None:
            offers[offer.code] = codec.load(revision.body)
    sections["offers"] = offers
    return Draft(settings, sections)


def assemble(session: Session, approved: bool = False) -> Catalog:
    return load_draft(session, approved).catalog()


def where(issue: Issue, catalog: Catalog) -> str:
    """An issue's location with objects named by key: offers[CC-GOLD].eligibility:1:5."""
    path = list(issue.path)
    if len(path) >= 2 and isinstance(path[0], str) and isinstance(path[1], int):
        objects = getattr(catalog, path[0], None)
        if isinstance(objects, list) and 0 <= path[1] < len(objects):
            kind = BY_SECTION.get(path[0])
            key = getattr(objects[path[1]], kind.key if kind else "name", path[1])
            path[1] = str(key)
    text = ""
    for i, part in enumerate(path):
        if i == 1 or isinstance(part, int):  # the object's key, or a list index
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    if issue.rule_line is not None:
        text += f":{issue.rule_line}:{issue.rule_column}"
    return text or "(catalog)"


def describe(issues: Iterable[Issue], catalog: Catalog) -> list[dict[str, Any]]:
    return [
        {"where": where(i, catalog), "message": i.message, "hint": i.hint, "severity": i.severity}
        for i in issues
    ]


def check_change(
    session: Session, change: Callable[[Draft], object], concerning: tuple[str, str] | None = None
) -> list[dict[str, Any]]:
    """Apply `change` to a draft of the head catalog and validate it. Raise Invalid with
    every error the change introduces; return the warnings about `concerning` (section,
    key), such as an offer that lacks a placement's required field."""
    draft = load_draft(session)
    change(draft)
    try:
        catalog = draft.catalog()
    except ValidationError as exc:  # stored objects that no longer fit the model
        raise Invalid(
            f"the catalog does not load: {exc.error_count()} problem(s)",
            errors=[
                {
                    "where": ".".join(map(str, e["loc"])),
                    "message": e["msg"],
                    "hint": None,
                    "severity": "error",
                }
                for e in exc.errors()
            ],
        ) from None
    report = validate_catalog(catalog)
    errors = describe(report.errors, catalog)
    if errors:
        before = load_draft(session).catalog()
        known = {
            (e["where"], e["message"]) for e in describe(validate_catalog(before).errors, before)
        }
        new = [e for e in errors if (e["where"], e["message"]) not in known]
        if new:
            raise Invalid(
                f"the change would make the catalog invalid: {len(new)} error(s)", errors=new
            )
    if concerning is None:
        return []
    prefix = f"{concerning[0]}[{concerning[1]}]"
    return [w for w in describe(report.warnings, catalog) if w["where"].startswith(prefix)]


# -- named objects -----------------------------------------------------------------------------
def _row(session: Session, kind: Kind, key: str) -> Any:
    table = CATALOG_TABLES[kind.section]
    row = session.scalar(select(table).where(table.name == key))
    if row is None:
        raise NotFound(f"no {kind.singular} {key!r}")
    return row


def _stored(kind: Kind, row: Any, warnings: list[dict[str, Any]] | None = None) -> Stored[Any]:
    return Stored(
        kind.section,
        row.name,
        row.version,
        kind.validate(codec.load(row.body)),
        row.created_at,
        row.created_by,
        row.updated_at,
        row.updated_by,
        warnings=warnings or [],
    )


ANY_VERSION = -1
"""`If-Match: *`: the client knowingly changes whatever version is current."""


def expect_version(current: int, expected: int | None, what: str) -> None:
    """Optimistic concurrency: an update must say which version it was based on."""
    if expected == ANY_VERSION:
        return
    if expected is None:
        raise PreconditionRequired(
            f"say which version of {what} you changed: send If-Match with its ETag",
            current_version=current,
        )
    if expected != current:
        raise Stale(
            f"{what} has changed since you read it (version {expected}); it is now "
            f"version {current}: read it again and redo your change",
            current_version=current,
        )


def list_objects(
    session: Session,
    kind: Kind,
    *,
    q: str | None = None,
    filters: dict[str, str] | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Stored[Any]], int]:
    """Objects in catalog order; `q` matches keys (any case), `filters` top-level fields."""
    table = CATALOG_TABLES[kind.section]
    stmt = select(table).order_by(table.position, table.id)
    if q:
        stmt = stmt.where(func.lower(table.name).contains(q.lower(), autoescape=True))
    fields = kind.fields
    for name in filters or {}:
        if name not in fields:
            raise ServiceError(
                f"cannot filter {kind.section} on {name!r}: it has no such field; "
                f"fields: {', '.join(fields)}"
            )
    items = [_stored(kind, row) for row in session.scalars(stmt)]
    items = [i for i in items if _matches(i.spec, filters or {})]
    return items[offset : offset + limit], len(items)


def _matches(spec: BaseModel, filters: dict[str, str]) -> bool:
    """Each filter names a top-level field: equal (any case), or listed in a list field."""
    for name, wanted in filters.items():
        value = getattr(spec, name, None)
        values = value if isinstance(value, (list, dict)) else [value]
        if wanted.lower() not in {str(v).lower() for v in values if v is not None}:
            return False
    return True


def get_object(session: Session, kind: Kind, key: str) -> Stored[Any]:
    return _stored(kind, _row(session, kind, key))


def create_object(session: Session, actor: Actor, kind: Kind, spec: BaseModel) -> Stored[Any]:
    lock_catalog(session)
    key = kind.key_of(spec)
    table = CATALOG_TABLES[kind.section]
    existing = session.scalar(select(table).where(func.lower(table.name) == key.lower()))
    if existing is not None:
        raise Conflict(
            f"a {kind.singular} named {existing.name!r} already exists",
            current_version=existing.version,
        )
    data = codec.plain(spec)
    warnings = check_change(
        session, lambda d: d.sections[kind.section].__setitem__(key, data), (kind.section, key)
    )
    position = int(session.scalar(select(func.coalesce(func.max(table.position), -1))) or 0) + 1
    row = table(
        name=key,
        position=position,
        body=codec.encode(spec),
        created_by=actor.name,
        updated_by=actor.name,
    )
    session.add(row)
    flush_or_taken(session, f"{kind.singular} {key!r}")
    audit.record(session, actor.name, f"{kind.section}.create", kind.section, key, after=data)
    return _stored(kind, row, warnings)


def update_object(
    session: Session, actor: Actor, kind: Kind, key: str, spec: BaseModel, *, version: int | None
) -> Stored[Any]:
    lock_catalog(session)
    row = _row(session, kind, key)
    expect_version(row.version, version, f"{kind.singular} {key!r}")
    if kind.key_of(spec) != key:
        raise Conflict(
            f"the {kind.singular} is {key!r} but the body names "
            f"{kind.key_of(spec)!r}; names cannot change: create the new one "
            "and delete this one"
        )
    before = codec.load(row.body)
    data = codec.plain(spec)
    warnings = check_change(
        session, lambda d: d.sections[kind.section].__setitem__(key, data), (kind.section, key)
    )
    row.body = codec.encode(spec)
    row.updated_by, row.updated_at = actor.name, utcnow()
    flush_or_stale(session, f"{kind.singular} {key!r}")
    audit.record(
        session, actor.name, f"{kind.section}.update", kind.section, key, before=before, after=data
    )
    return _stored(kind, row, warnings)


def delete_object(
    session: Session, actor: Actor, kind: Kind, key: str, version: int | None
) -> None:
    lock_catalog(session)
    row = _row(session, kind, key)
    expect_version(row.version, version, f"{kind.singular} {key!r}")
    before = codec.load(row.body)
    check_change(session, lambda d: d.sections[kind.section].pop(key))
    session.delete(row)
    flush_or_stale(session, f"{kind.singular} {key!r}")
    audit.record(session, actor.name, f"{kind.section}.delete", kind.section, key, before=before)


def flush_or_taken(session: Session, what: str) -> None:
    """Write a new object now; one created meanwhile under the same name wins."""
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"{what} was created by someone else meanwhile") from None


def flush_or_stale(session: Session, what: str) -> None:
    """Write now; a concurrent writer that got there first makes this one stale."""
    try:
        session.flush()
    except (StaleDataError, IntegrityError):  # a version moved on, or a unique row was taken
        raise Stale(
            f"{what} was changed by someone else meanwhile: read it again and redo your change"
        ) from None


# -- settings ----------------------------------------------------------------------------------
def get_settings(session: Session) -> Stored[Any]:
    row = session.get(CatalogSettingsRow, 1)
    if row is None:
        return Stored("settings", "catalog", 0, CatalogSettings())
    return Stored(
        "settings",
        "catalog",
        row.version,
        CatalogSettings.model_validate(codec.load(row.body)),
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def update_settings(
    session: Session, actor: Actor, spec: CatalogSettings, version: int | None
) -> Stored[Any]:
    lock_catalog(session)
    row = session.get(CatalogSettingsRow, 1)
    expect_version(row.version if row else 0, version, "the catalog settings")
    data = codec.plain(spec)
    check_change(session, lambda d: setattr(d, "settings", data))
    before = codec.load(row.body) if row else None
    if row is None:
        row = CatalogSettingsRow(id=1, body=codec.encode(spec), updated_by=actor.name)
        session.add(row)
    else:
        row.body, row.updated_by, row.updated_at = codec.encode(spec), actor.name, utcnow()
    flush_or_stale(session, "the catalog settings")
    audit.record(
        session, actor.name, "settings.update", "settings", "catalog", before=before, after=data
    )
    return get_settings(session)
