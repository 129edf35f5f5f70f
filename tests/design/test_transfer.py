"""Catalog import and export: YAML ↔ database, an exact round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from overture.catalog import load_catalog
from overture.demo import CATALOG_PATH
from overture.design import offers, transfer
from overture.design.catalog import ANY_VERSION, assemble
from overture.design.errors import Invalid
from overture.store import Database
from overture.store.models import AuditEntry
from tests.design.helpers import ADMIN, APPROVER, MANAGER, demo_files


def test_import_export_import_is_an_exact_round_trip(database: Database, tmp_path: object) -> None:
    with database.session() as s:
        summary = transfer.import_catalog(s, ADMIN, demo_files())
        assert len(summary["offers"]["added"]) == 36
    with database.session() as s:
        assert assemble(s) == load_catalog(CATALOG_PATH)  # the database holds the demo
        exported = transfer.export(s)
    assert transfer.parse(exported) == load_catalog(CATALOG_PATH)
    with database.session() as s:  # importing what was exported changes nothing
        again = transfer.import_catalog(s, ADMIN, exported)
        assert not again["settings_changed"]
        assert all(not any(v.values()) for k, v in again.items() if isinstance(v, dict))
        assert transfer.export(s) == exported


def test_import_applies_changes_and_removals(database: Database) -> None:
    files = demo_files()
    with database.session() as s:
        transfer.import_catalog(s, ADMIN, files)
    files["offers-services.yaml"] = files["offers-services.yaml"].replace(
        "Get the mobile app", "Download our app"
    )
    offers_text = files["offers-lending.yaml"]
    files["offers-lending.yaml"] = (
        offers_text[: offers_text.index("  - code: MTG-GREEN")]
        + offers_text[offers_text.index("  # --- loans") :]
    )
    files["targeting.yaml"] = files["targeting.yaml"].replace(
        "offers: [MTG-FIRST-HOME, MTG-GREEN]", "offers: [MTG-FIRST-HOME]"
    )
    with database.session() as s:
        summary = transfer.import_catalog(s, ADMIN, files)
    assert summary["offers"] == {"added": [], "changed": ["APP-DOWNLOAD"], "removed": ["MTG-GREEN"]}
    assert summary["treatment_rules"]["changed"] == ["home-buyers-mortgages"]
    with database.session() as s:  # each change is audited like an edit, with before/after
        entries = {
            (e.action, e.key): e
            for e in s.scalars(select(AuditEntry).where(AuditEntry.operator == ADMIN.name))
        }
    removed = entries["offers.delete", "MTG-GREEN"]
    assert removed.before is not None and removed.before["name"] == "Green mortgage"
    changed = entries["offers.update", "APP-DOWNLOAD"]
    assert changed.before != changed.after and "Download our app" in str(changed.after)
    assert ("treatment_rules.update", "home-buyers-mortgages") in entries
    assert ("catalog.import", "") in entries


def test_an_invalid_catalog_imports_nothing(database: Database) -> None:
    files = demo_files()
    files["offers-banking.yaml"] = files["offers-banking.yaml"].replace(
        "eligibility: age >= 25", "eligibility: agee >= 25"
    )
    with database.session() as s, pytest.raises(Invalid) as caught:
        transfer.import_catalog(s, ADMIN, files)
    (error,) = caught.value.extensions["errors"]
    assert error["where"].startswith("offers-banking.yaml:")
    assert "unknown profile field 'agee'" in error["message"]
    with database.session() as s:
        assert assemble(s).offers == []


def test_an_import_revises_offers_as_an_edit_does(database: Database, tmp_path: Path) -> None:
    """The same change to offers in each status, made by importing the catalog in one
    database and by editing each offer in another, leaves the same revisions: a draft,
    pending or rejected revision changes in place (rejected becomes a draft again), an
    approved one stays and a new pending revision holds the change; each offer's version
    goes up by one, moved or not."""
    statuses = {"APP-DOWNLOAD": "draft", "MTG-GREEN": "pending", "INS-TRAVEL": "approved"}
    statuses["CC-CASHBACK"] = "rejected"
    edited = Database(str(tmp_path / "edited.db"))
    edited.upgrade()
    try:
        for db in (database, edited):
            with db.session() as s:
                transfer.import_catalog(s, ADMIN, demo_files())
                for code, status in statuses.items():
                    if status != "draft":
                        offers.submit(s, MANAGER, code, ANY_VERSION)
                    if status == "approved":
                        offers.approve(s, APPROVER, code, ANY_VERSION)
                    elif status == "rejected":
                        offers.reject(s, APPROVER, code, ANY_VERSION, "not yet")

        def versions(db: Database) -> dict[str, int]:
            with db.session() as s:
                return {code: offers.get_offer(s, code).version for code in statuses}

        before = versions(database)
        assert before == versions(edited)
        with database.session() as s:
            catalog = assemble(s)
            changed = [
                o.model_copy(update={"name": o.name + " (new)"}) if o.code in statuses else o
                for o in catalog.offers
            ]
            # the approved offer also moves to the front
            changed.sort(key=lambda o: o.code != "INS-TRAVEL")
            files = transfer.catalog_files(catalog.model_copy(update={"offers": changed}))
            summary = transfer.import_catalog(s, MANAGER, files)
        assert sorted(summary["offers"]["changed"]) == sorted(statuses)
        with database.session() as s:
            assert assemble(s).offers[0].code == "INS-TRAVEL"
        with edited.session() as s:
            for offer in changed:
                if offer.code in statuses:
                    offers.update_offer(s, MANAGER, offer.code, offer, ANY_VERSION)

        def revisions(db: Database) -> dict[str, list[tuple[int, str, bool, bool, str]]]:
            with db.session() as s:
                return {
                    code: [
                        (r["revision"], r["status"], r["approved"], r["head"], r["spec"]["name"])
                        for r in offers.revisions(s, code)
                    ]
                    for code in statuses
                }

        imported = revisions(database)
        assert imported == revisions(edited)
        assert versions(database) == versions(edited) == {c: v + 1 for c, v in before.items()}
        assert [r[:4] for r in imported["INS-TRAVEL"]] == [
            (1, "approved", True, False),
            (2, "pending", False, True),
        ]
        assert [r[:2] for r in imported["CC-CASHBACK"]] == [(1, "draft")]
        assert [r[:2] for r in imported["MTG-GREEN"]] == [(1, "pending")]
    finally:
        edited.dispose()
