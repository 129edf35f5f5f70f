"""Catalog import and export: YAML ↔ database, an exact round trip."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from overture.catalog import load_catalog
from overture.demo import CATALOG_PATH
from overture.design import transfer
from overture.design.catalog import assemble
from overture.design.errors import Invalid
from overture.store import Database
from overture.store.models import AuditEntry
from tests.design.helpers import ADMIN, demo_files


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
