"""Catalog objects in the database: versions, validation on save, references."""

from __future__ import annotations

import pytest

from overture.catalog.model import Channel, Placement
from overture.design import catalog as store
from overture.design import transfer
from overture.design.errors import Conflict, Invalid, NotFound, PreconditionRequired, Stale
from overture.design.kinds import BY_SECTION, CatalogSettings
from overture.store import Database
from overture.store.models import AuditEntry
from tests.design.helpers import ADMIN, demo_files

CHANNELS = BY_SECTION["channels"]
PLACEMENTS = BY_SECTION["placements"]
CATEGORIES = BY_SECTION["categories"]


@pytest.fixture
def demo(database: Database) -> Database:
    with database.session() as s:
        transfer.import_catalog(s, ADMIN, demo_files())
    return database


def test_create_read_update_with_versions(demo: Database) -> None:
    with demo.session() as s:
        created = store.create_object(s, ADMIN, CHANNELS, Channel(name="kiosk"))
        assert (created.key, created.version, created.created_by) == ("kiosk", 1, "ann")
    with demo.session() as s:
        updated = store.update_object(
            s, ADMIN, CHANNELS, "kiosk", Channel(name="kiosk", description="In branch"), version=1
        )
        assert updated.version == 2
    with demo.session() as s, pytest.raises(Stale) as stale:
        store.update_object(s, ADMIN, CHANNELS, "kiosk", Channel(name="kiosk"), version=1)
    assert stale.value.extensions["current_version"] == 2
    with demo.session() as s, pytest.raises(PreconditionRequired):
        store.update_object(s, ADMIN, CHANNELS, "kiosk", Channel(name="kiosk"), version=None)
    with demo.session() as s, pytest.raises(Conflict, match="already exists"):
        store.create_object(s, ADMIN, CHANNELS, Channel(name="KIOSK"))
    with demo.session() as s:
        assert store.get_object(s, CHANNELS, "kiosk").spec == Channel(
            name="kiosk", description="In branch"
        )
        actions = [e.action for e in s.query(AuditEntry).order_by(AuditEntry.id)]
        assert actions[-2:] == ["channels.create", "channels.update"]


def test_a_change_that_breaks_the_catalog_is_refused_with_every_error(demo: Database) -> None:
    with demo.session() as s, pytest.raises(Invalid) as caught:
        store.delete_object(s, ADMIN, CHANNELS, "email", version=1)
    wheres = {e["where"] for e in caught.value.extensions["errors"]}
    assert wheres == {
        "placements[email_newsletter_slot].channel",
        "placements[email_banner].channel",
        "policies[email_daily_cap].channels[0]",
        "policies[email_consent].channels[0]",
    }
    with demo.session() as s:
        assert store.get_object(s, CHANNELS, "email").version == 1  # nothing changed


def test_rules_are_type_checked_when_saved(demo: Database) -> None:
    with demo.session() as s:
        cards = store.get_object(s, CATEGORIES, "cards")
        broken = cards.spec.model_copy(update={"eligibility": "agee >= 18"})
        with pytest.raises(Invalid) as caught:
            store.update_object(s, ADMIN, CATEGORIES, "cards", broken, version=cards.version)
    (error,) = caught.value.extensions["errors"]
    assert error["where"] == "categories[cards].eligibility:1:1"
    assert error["hint"] == "did you mean 'age'?"


def test_listing_filters_and_pages(demo: Database) -> None:
    with demo.session() as s:
        web, total = store.list_objects(s, PLACEMENTS, filters={"channel": "web"})
        assert total == 3 and web[0].key == "web_home_hero"
        page, total = store.list_objects(s, PLACEMENTS, limit=3, offset=6)
        assert total == 8 and [p.key for p in page] == ["email_newsletter_slot", "email_banner"]
        found, _ = store.list_objects(s, PLACEMENTS, q="APP")
        assert {p.key for p in found} == {"app_home_card", "app_inbox"}


def test_names_cannot_change_and_unknown_objects_are_not_found(demo: Database) -> None:
    with demo.session() as s:
        hero = store.get_object(s, PLACEMENTS, "web_home_hero")
        assert isinstance(hero.spec, Placement)
        with pytest.raises(Conflict, match="names cannot change"):
            store.update_object(
                s,
                ADMIN,
                PLACEMENTS,
                "web_home_hero",
                hero.spec.model_copy(update={"name": "hero"}),
                version=hero.version,
            )
        with pytest.raises(NotFound):
            store.get_object(s, PLACEMENTS, "nowhere")


def test_settings(demo: Database) -> None:
    with demo.session() as s:
        current = store.get_settings(s)
        assert isinstance(current.spec, CatalogSettings) and current.spec.name == "overture-bank"
        renamed = current.spec.model_copy(update={"description": "Changed"})
        assert (
            store.update_settings(s, ADMIN, renamed, current.version).version == current.version + 1
        )
        without_income = current.spec.model_copy(update={"context": {}})
        with pytest.raises(Invalid):  # treatment rules read context.intent
            store.update_settings(s, ADMIN, without_income, current.version + 1)
