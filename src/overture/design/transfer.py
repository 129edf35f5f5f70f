"""Catalog import and export: YAML files ↔ the database.

Export writes the head catalog as the files `overture init` writes (catalog.yaml,
categories.yaml, offers.yaml, targeting.yaml, policies.yaml), in catalog order. Import
reads such files, validates them as `overture validate` does (all or nothing: a catalog
with errors changes nothing), then brings the database to exactly that catalog: objects
are created, changed or deleted, each audited with its before and after as an edit is;
offers follow the approval workflow (a new or changed offer is a draft, or a new pending
revision if it was approved); unchanged objects are left alone, so importing what was
exported changes nothing.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from overture.catalog import codec
from overture.catalog.loader import Source, read_text
from overture.catalog.model import Catalog, Offer
from overture.catalog.validate import validate_source
from overture.design import audit
from overture.design.catalog import SECTIONS, Actor, assemble, lock_catalog
from overture.design.errors import Invalid
from overture.design.kinds import BY_SECTION, CatalogSettings
from overture.design.offers import add_offer, remove_offer, revise
from overture.store.models import (
    CATALOG_TABLES,
    CatalogSettingsRow,
    OfferRow,
    utcnow,
)

FILES: dict[str, tuple[str, ...]] = {
    "catalog.yaml": ("audiences", "channels", "zones", "placements"),
    "categories.yaml": ("categories",),
    "offers.yaml": ("offers",),
    "targeting.yaml": ("segments", "treatment_rules"),
    "policies.yaml": ("policies",),
}


def export(session: Session) -> dict[str, str]:
    """The head catalog as YAML files (name -> text)."""
    return catalog_files(assemble(session))


def is_empty(session: Session) -> bool:
    """Whether the database holds no catalog object and no offer (a fresh install)."""
    if session.scalar(select(OfferRow.id).limit(1)) is not None:
        return False
    return all(session.scalar(select(t.id).limit(1)) is None for t in CATALOG_TABLES.values())


def catalog_files(catalog: Catalog) -> dict[str, str]:
    settings = codec.plain(
        CatalogSettings.model_validate(
            catalog.model_dump(include=set(CatalogSettings.model_fields))
        )
    )
    files = {}
    for name, sections in FILES.items():
        data: dict[str, Any] = dict(settings) if name == "catalog.yaml" else {}
        for section in sections:
            data[section] = [codec.plain(o) for o in getattr(catalog, section)]
        files[name] = codec.dump(data)
    return files


def parse(files: dict[str, str]) -> Catalog:
    """Validate YAML files as one catalog; Invalid with every problem if it has errors."""
    source = Source()
    for name in sorted(files):
        part = read_text(files[name], name)
        source.issues.extend(part.issues)
        _merge(source, part)
    report = validate_source(source)
    if report.catalog is None:
        errors = [
            {
                "where": f"{i.file}:{i.line}: {i.where}" if i.file else i.where,
                "message": i.message,
                "hint": i.hint,
                "severity": i.severity,
            }
            for i in report.errors
        ]
        raise Invalid(
            f"the catalog has {len(errors)} error(s): nothing was imported", errors=errors
        )
    return report.catalog


def _merge(source: Source, part: Source) -> None:
    for key, value in part.data.items():
        if isinstance(value, list):
            offset = len(source.data.get(key, []))
            source.data.setdefault(key, []).extend(value)
            for path, loc in part.locations.items():
                if path and path[0] == key and len(path) > 1 and isinstance(path[1], int):
                    source.locations[(key, path[1] + offset, *path[2:])] = loc
        elif isinstance(value, dict) and isinstance(source.data.get(key), dict):
            source.data[key].update(value)
        else:
            source.data[key] = value
    for path, loc in part.locations.items():
        source.locations.setdefault(path, loc)


def import_catalog(session: Session, actor: Actor, files: dict[str, str]) -> dict[str, Any]:
    """Make the database hold exactly the catalog in `files`. Returns what changed."""
    catalog = parse(files)  # (before the lock: parsing a large catalog takes a while)
    lock_catalog(session)
    summary: dict[str, Any] = {}
    settings = CatalogSettings.model_validate(
        catalog.model_dump(include=set(CatalogSettings.model_fields))
    )
    summary["settings_changed"] = _import_settings(session, actor, settings)
    for section in SECTIONS:
        summary[section] = _import_named(session, actor, section, getattr(catalog, section))
    summary["offers"] = _import_offers(session, actor, catalog.offers)
    session.flush()
    audit.record(
        session,
        actor.name,
        "catalog.import",
        "catalog",
        "",
        after={k: v for k, v in summary.items() if k != "settings_changed"},
    )
    return summary


def _import_settings(session: Session, actor: Actor, settings: CatalogSettings) -> bool:
    row = session.get(CatalogSettingsRow, 1)
    body = codec.encode(settings)
    if row is not None and row.body == body:
        return False
    audit.record(
        session,
        actor.name,
        "settings.update",
        "settings",
        "",
        before=codec.load(row.body) if row else None,
        after=codec.load(body),
    )
    if row is None:
        session.add(CatalogSettingsRow(id=1, body=body, updated_by=actor.name))
    else:
        row.body, row.updated_by, row.updated_at = body, actor.name, utcnow()
    return True


def _import_named(
    session: Session, actor: Actor, section: str, objects: list[BaseModel]
) -> dict[str, list[str]]:
    kind = BY_SECTION[section]
    table = CATALOG_TABLES[section]
    rows = {r.name: r for r in session.scalars(select(table))}
    changes: dict[str, list[str]] = {"added": [], "changed": [], "removed": []}
    wanted = set()
    for position, obj in enumerate(objects):
        key = kind.key_of(obj)
        wanted.add(key)
        body = codec.encode(obj)
        row = rows.get(key)
        if row is None:
            session.add(
                table(
                    name=key,
                    position=position,
                    body=body,
                    created_by=actor.name,
                    updated_by=actor.name,
                )
            )
            changes["added"].append(key)
            audit.record(
                session, actor.name, f"{section}.create", section, key, after=codec.load(body)
            )
        elif row.body != body or row.position != position:
            if row.body != body:
                changes["changed"].append(key)
                audit.record(
                    session,
                    actor.name,
                    f"{section}.update",
                    section,
                    key,
                    before=codec.load(row.body),
                    after=codec.load(body),
                )
            row.body, row.position, row.updated_by, row.updated_at = (
                body,
                position,
                actor.name,
                utcnow(),
            )
    for key, row in rows.items():
        if key not in wanted:
            audit.record(
                session, actor.name, f"{section}.delete", section, key, before=codec.load(row.body)
            )
            session.delete(row)
            changes["removed"].append(key)
    return changes


def _import_offers(session: Session, actor: Actor, offers: list[Offer]) -> dict[str, list[str]]:
    """Offers follow the workflow as edits do (offers.add_offer, offers.revise)."""
    rows = {r.code: r for r in session.scalars(select(OfferRow))}
    changes: dict[str, list[str]] = {"added": [], "changed": [], "removed": []}
    wanted = set()
    for position, offer in enumerate(offers):
        wanted.add(offer.code)
        body = codec.encode(offer)
        row = rows.get(offer.code)
        if row is None:
            add_offer(session, actor, offer, position)
            changes["added"].append(offer.code)
            audit.record(
                session, actor.name, "offers.create", "offers", offer.code, after=codec.load(body)
            )
            continue
        head = row.head
        assert head is not None
        if head.body != body:
            changes["changed"].append(offer.code)
            audit.record(
                session,
                actor.name,
                "offers.update",
                "offers",
                offer.code,
                before=codec.load(head.body),
                after=codec.load(body),
            )
            revise(session, actor, row, offer, position)
        elif row.position != position or row.category != offer.category:
            row.position, row.category = position, offer.category
            row.updated_by, row.updated_at = actor.name, utcnow()
    for code, row in rows.items():
        if code not in wanted:
            audit.record(
                session,
                actor.name,
                "offers.delete",
                "offers",
                code,
                before=codec.load(row.head.body) if row.head else None,
            )
            remove_offer(session, row)
            changes["removed"].append(code)
    return changes
