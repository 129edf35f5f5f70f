"""Validation reports every problem at once, each with its location and a hint."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from overture.catalog import CatalogError, load_catalog, read_text, validate_path, validate_source
from overture.demo import CATALOG_PATH

BASE = """
audiences:
  - name: customer
    id_field: id
    fields: {id: string, age: int, country: string, products: "list[string]"}
context: {device: string}
channels: [{name: web}]
zones: [{name: home}]
placements:
  - name: hero
    channel: web
    zone: home
    fields: {title: {required: true}, body: {}}
categories:
  - {name: root}
  - {name: child, parent: root}
"""


def _issues(extra: str) -> list[str]:
    report = validate_source(read_text(BASE + extra))
    return [str(i) for i in report.issues]


def test_the_demo_catalog_is_valid_without_warnings() -> None:
    report = validate_path(CATALOG_PATH)
    assert report.ok and report.issues == []


def test_unknown_field_in_a_rule_points_inside_the_rule() -> None:
    issues = _issues("""
offers:
  - code: A
    name: An offer
    category: child
    placements: [hero]
    content: {title: Hi}
    eligibility: age > 3 and agee < 9
""")
    assert issues == [
        "offers[0].eligibility:1:13: unknown profile field 'agee' — did you mean 'age'?"
    ]


def test_every_error_is_reported_at_once() -> None:
    report = validate_source(
        read_text(
            BASE
            + """
offers:
  - {code: A, name: a, category: nope, placements: [hero], content: {title: x}}
  - {code: a, name: b, category: child, placements: [hero, villa], content: {title: x}}
  - {code: C, name: c, category: child, placements: [hero], content: {title: x},
     eligibility: "age >"}
segments:
  - {name: s1, rule: "country == 1"}
treatment_rules:
  - {name: t, segment: s2, offers: [A, Z]}
policies:
  - {name: p, kind: capping, limit: 3, window: 7 days}
  - {name: q, kind: capp, limit: 3}
"""
        )
    )
    text = [str(i) for i in report.errors]
    expected = [
        "offers[0].category: unknown category 'nope'",
        "offers[1].code: duplicate code 'a'",
        "offers[1].placements.villa: unknown placement 'villa'",
        "offers[2].eligibility:1:6: unexpected end of rule",
        "segments[0].rule:1:9: cannot compare string with int",
        "treatment_rules[0].segment: unknown segment 's2'",
        "treatment_rules[0].offers[1]: unknown offer 'Z'",
        "policies[0].window: Value error, '7 days' is not a duration",
        "policies[1].kind: unknown policy kind",
    ]
    for fragment in expected:
        assert any(
            t.startswith(fragment[: fragment.index(":") + 1])
            and fragment.split(": ", 1)[1].removeprefix("Value error, ") in t
            for t in text
        ), (fragment, text)
    assert report.catalog is None


def test_locations_point_at_the_yaml_line() -> None:
    report = validate_source(
        read_text(
            BASE
            + """
offers:
  - code: A
    name: An offer
    category: child
    placements: [hero]
    content: {title: Hi}
    eligibility: |
      age > 3
      and agee < 9
"""
        )
    )
    (issue,) = report.issues
    assert (issue.rule_line, issue.rule_column) == (2, 5)
    assert issue.line == BASE.count("\n") + 10  # the second line of the block


def test_structural_errors_suggest_fixes() -> None:
    issues = _issues("""
offerz: []
offers:
  - {code: A, name: a, category: child, placements: [hero], content: {title: x},
     eligibilty: "age > 1"}
  - {code: "bad code", name: b, category: child}
""")
    assert "offerz: unknown section 'offerz' — did you mean 'offers'?" in issues
    assert (
        "offers[0].eligibilty: unknown field 'eligibilty' — did you mean 'eligibility'?" in issues
    )
    assert any(i.startswith("offers[1].code: 'bad code' is not a valid name") for i in issues)


def test_numbers_are_finite() -> None:
    """An infinite treatment score times a weight of 0 made a NaN score, which the ranking
    loop proposed (found by a review): weights, scores and values are finite numbers."""
    issues = _issues("""
offers:
  - {code: A, name: a, category: child, placements: [hero], content: {title: x},
     weights: [{value: .inf}]}
treatment_rules:
  - {name: t, segment: s, offers: [A], score: .nan}
""")
    assert "offers[0].weights[0].value: expected a finite number, not inf" in issues
    assert not any(".str" in i or "function-" in i for i in issues)  # pydantic's branches
    assert any(i.startswith("treatment_rules[0].score:") for i in issues)


def test_broken_objects_do_not_cascade_into_dangling_references() -> None:
    issues = _issues("""
offers:
  - {code: A, name: a, category: child, placements: [hero], content: {title: x}, status: maybe}
treatment_rules:
  - {name: t, segment: s, offers: [A]}
segments:
  - {name: s, rule: "age > 1"}
""")
    assert len(issues) == 1 and issues[0].startswith("offers[0].status")


def test_category_cycles_are_reported_once() -> None:
    issues = _issues("""
  - {name: x, parent: y}
  - {name: y, parent: z}
  - {name: z, parent: x}
""")
    cycles = [i for i in issues if "cycle" in i]
    assert cycles == [
        "categories[2].parent: cycle in the category tree: x → y → z → x — "
        "a category cannot be its own ancestor"
    ]


def test_missing_required_content_is_a_warning_that_makes_the_offer_invalid_there() -> None:
    report = validate_source(
        read_text(
            BASE
            + """
offers:
  - {code: A, name: a, category: child, placements: [hero], content: {body: only a body}}
"""
        )
    )
    assert report.ok
    (warning,) = report.warnings
    assert "not valid on placement 'hero': required field 'title' missing" in str(warning)


def test_content_fields_and_templates_are_checked() -> None:
    issues = _issues("""
offer_attributes: {apr: float}
offers:
  - code: A
    name: a
    category: child
    attributes: {apr: "high"}
    content: {title: "Hello {{ profile.frist_name }}", body: "{{ offer.apr | round(1) }}%"}
    placements:
      hero: {titel: "Override"}
  - code: B
    name: b
    category: child
    placements: [hero]
    content: {title: "{% if %}"}
""")
    assert (
        "offers[0].attributes.apr: attribute 'apr' is declared float but given string: 'high'"
        in issues
    )
    assert any(
        i.startswith("offers[0].placements.hero.titel: 'titel' is not a content field")
        and "did you mean 'title'?" in i
        for i in issues
    )
    assert any(
        i.startswith("offers[0].content.title:1:1: unknown field profile.frist_name")
        for i in issues
    )
    assert any(i.startswith("offers[1].content.title:1:1: template syntax") for i in issues)


def test_references_across_objects() -> None:
    issues = _issues("""
offers:
  - code: A
    name: a
    category: child
    placements: [hero]
    content: {title: x}
    weights: [{value: 2, placements: [side]}, {value: "age * 'x'"}]
placements:
  - {name: side, channel: mail, fields: {title: {required: true}}, fallback_offers: [A]}
policies:
  - {name: f, kind: filter, rule: "vip", categories: [child]}
""")
    assert "placements[1].channel: unknown channel 'mail' — known: web" in issues
    assert any(
        i.startswith("placements[1].fallback_offers[0]: fallback offer 'A' is not valid")
        for i in issues
    )
    assert (
        "offers[0].weights[0].placements[0]: weight for placement 'side', which the offer is "
        "not valid on — list it under the offer's placements" in issues
    )
    assert any(i.startswith("offers[0].weights[1].value:1:5: cannot apply '*'") for i in issues)
    assert any(i.startswith("policies[0].rule:1:1: unknown profile field 'vip'") for i in issues)


def test_yaml_syntax_errors_and_duplicate_keys(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(BASE)
    (tmp_path / "b.yaml").write_text("offers:\n  - code: A\n    code: B\n")
    (tmp_path / "c.yaml").write_text("offers: [\n")
    report = validate_path(tmp_path)
    by_file = {(Path(i.file or "").name, i.line): str(i) for i in report.issues}
    assert by_file[("b.yaml", 3)].startswith("offers[0].code: key 'code' is given twice")
    assert any(name == "c.yaml" and "invalid YAML" in text for (name, _), text in by_file.items())


def test_a_folder_is_merged_and_a_missing_path_is_reported(tmp_path: Path) -> None:
    (tmp_path / "1-base.yaml").write_text(BASE)
    (tmp_path / "2-offers.yml").write_text(
        "offers:\n  - {code: A, name: a, category: child, placements: [hero],\n"
        "     content: {title: x}}\n"
    )
    catalog = load_catalog(tmp_path)
    assert [o.code for o in catalog.offers] == ["A"]
    with pytest.raises(CatalogError, match="does not exist"):
        load_catalog(tmp_path / "nowhere")


def test_audiences_are_required_and_their_id_field_declared() -> None:
    report = validate_source(
        read_text("audiences:\n  - {name: c, id_field: id, fields: {age: int}}\n")
    )
    assert [str(i) for i in report.errors] == [
        "audiences[0].id_field: id field 'id' is not among the audience's fields — declare it "
        "under fields:"
    ]
    report = validate_source(read_text("channels: [{name: web}]\n"))
    assert "a catalog needs at least one audience" in str(report.errors[0])


def test_quoted_dates_stay_dates() -> None:
    report = validate_source(
        read_text(
            BASE
            + """
offers:
  - {code: A, name: a, category: child, placements: [hero], content: {title: x},
     start: "2026-01-01", end: "2026-06-30", attributes: {launched: 2026-01-01}}
"""
        )
    )
    assert report.catalog is not None
    (offer,) = report.catalog.offers
    assert type(offer.end) is dt.date and type(offer.start) is dt.date  # the whole last day
    assert type(offer.attributes["launched"]) is dt.date
