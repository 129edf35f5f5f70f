"""Forms made from the catalog's models: every object of the demo catalog read into its form
and parsed back is the same object (so opening and saving changes nothing), and what does
not read says which field and why."""

from __future__ import annotations

import pytest
from starlette.datastructures import FormData

from overture.auth import Permission
from overture.catalog import codec, load_catalog
from overture.console import forms
from overture.demo import CATALOG_PATH
from overture.design.kinds import BY_SECTION, OFFERS, CatalogSettings, Kind

CATALOG = load_catalog(CATALOG_PATH)
SETTINGS = Kind("settings", "settings", "catalog settings", CatalogSettings, Permission.SETUP)


def _objects() -> list[tuple[Kind, object]]:
    out: list[tuple[Kind, object]] = []
    for section, kind in BY_SECTION.items():
        out.extend((kind, item) for item in getattr(CATALOG, section))
    return out


def _form(values: dict[str, str]) -> FormData:
    return FormData([(name, value) for name, value in values.items() if value != ""])


@pytest.mark.parametrize(
    ("kind", "spec"),
    _objects(),
    ids=lambda v: (
        getattr(v, "section", None) or getattr(v, "name", None) or getattr(v, "code", "?")
    ),
)
def test_an_object_read_into_its_form_and_parsed_back_is_the_same(kind: Kind, spec: object) -> None:
    values = forms.values_of(kind, spec)  # type: ignore[arg-type]
    parsed = forms.parse(kind, _form(values))
    again = forms.validate(kind, parsed)
    assert parsed.errors == {}
    assert again is not None
    assert codec.plain(again) == codec.plain(spec)  # type: ignore[arg-type]


def test_the_settings_read_into_their_form_and_parsed_back_are_the_same() -> None:
    spec = CatalogSettings(
        name=CATALOG.name,
        description=CATALOG.description,
        settings=CATALOG.settings,
        context=CATALOG.context,
        offer_attributes=CATALOG.offer_attributes,
    )
    again = forms.validate(SETTINGS, forms.parse(SETTINGS, _form(forms.values_of(SETTINGS, spec))))
    assert again is not None and codec.plain(again) == codec.plain(spec)


def test_what_does_not_read_is_said_beside_its_field() -> None:
    parsed = forms.parse(
        OFFERS,
        _form({"code": "X", "name": "", "value": "ten", "weights": "- value: [", "category": "c"}),
    )
    assert parsed.errors["value"] == ["'ten' is not a number"]
    assert "line 1" in parsed.errors["weights"][0]
    parsed = forms.parse(OFFERS, _form({"code": "X", "category": "c", "start": "tomorrow"}))
    assert forms.validate(OFFERS, parsed) is None
    assert "name" in parsed.errors and parsed.errors["name"] == ["required"]
    assert "not a date" in parsed.errors["start"][0]


def test_a_policy_form_keeps_only_the_fields_of_its_kind() -> None:
    kind = BY_SECTION["policies"]
    fields = {f.name: f for f in forms.fields_of(kind)}
    assert fields["kind"].choices == ("filter", "capping", "suppression", "inventory")
    assert fields["rule"].only == ("filter",)
    parsed = forms.parse(
        kind, _form({"name": "p", "kind": "capping", "limit": "2", "window": "7d", "rule": "x"})
    )
    assert "rule" not in parsed.data
    assert forms.validate(kind, parsed) is not None
