"""A batch's output: the content each recipient gets is what the real-time engine renders
for them, and every proposition has its own tracking code."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from overture.batch.allocate import allocate
from overture.batch.output import _reads_of, content_column, finish
from overture.catalog import load_catalog
from overture.demo import CATALOG_PATH, profiles
from overture.engine import DecisionPlan, DecisionRequest, PlacementRequest, build_plan
from overture.engine.render import compile_content
from tests.demo import DEMO_AS_OF

NOW = dt.datetime(2026, 11, 23, 10, 30)


@pytest.fixture(scope="module")
def world() -> tuple[DecisionPlan, duckdb.DuckDBPyConnection, list[dict[str, object]]]:
    plan = build_plan(load_catalog(CATALOG_PATH), NOW)
    table = profiles.generate(3_000, as_of=DEMO_AS_OF)
    con = duckdb.connect()
    con.register("population", table)
    return plan, con, table.to_pylist()


@pytest.mark.parametrize(
    "placement", ["cc_next_best_action", "email_newsletter_slot", "web_home_hero"]
)
def test_content_is_what_the_engine_renders(
    world: tuple[DecisionPlan, duckdb.DuckDBPyConnection, list[dict[str, object]]],
    placement: str,
) -> None:
    plan, con, rows = world
    output = finish(allocate(con, plan, placement, "population", now=NOW), plan)
    assert output.render_error_count == 0
    got: dict[tuple[str, int], dict[str, object]] = {}
    for row in con.table(output.table).fetchall():
        record = dict(zip(output.columns, row, strict=True))
        got[(str(record["recipient"]), int(record["rank"]))] = record
    compared = 0
    for profile in rows:
        decision = plan.decide(
            DecisionRequest((PlacementRequest(placement),), profile=profile, now=NOW)
        )
        for p in decision.placements[0].propositions:
            record = got[(str(profile["customer_id"]), p.rank)]
            assert record["offer"] == p.offer_code
            assert record["offer_name"] == p.offer_name
            assert record["category"] == p.category
            content = {
                name: record[content_column(name)]
                for name in p.content
                if record.get(content_column(name)) is not None
            }
            assert content == p.content, (profile["customer_id"], p.offer_code)
            compared += 1
    assert compared == len(got) >= len(rows)
    codes = con.sql(f"SELECT tracking_code FROM {output.table}").fetchall()
    assert len({c for (c,) in codes}) == len(codes) == len(got)
    assert all(c.startswith(output.tracking_prefix + ".") for (c,) in codes)


def test_templates_are_rendered_once_per_distinct_value(
    world: tuple[DecisionPlan, duckdb.DuckDBPyConnection, list[dict[str, object]]],
) -> None:
    """The Platinum script reads one field (first_name): it is rendered once per name
    among those who get it, not once per recipient."""
    plan, con, _rows = world
    output = finish(allocate(con, plan, "cc_next_best_action", "population", now=NOW), plan)
    names = con.sql(
        f"SELECT count(DISTINCT p.first_name), count(*) FROM {output.table} o "
        "JOIN population p ON p.customer_id = o.recipient WHERE o.offer = 'CC-PLATINUM'"
    ).fetchall()[0]
    assert names[1] > names[0]  # some names repeat
    scripts = con.sql(
        f"SELECT DISTINCT content_script FROM {output.table} WHERE offer = 'CC-PLATINUM'"
    ).fetchall()
    assert len(scripts) == names[0]


@pytest.mark.parametrize(
    ("templates", "reads"),
    [
        (["static text"], ()),
        (["Hi {{ profile.first_name }}"], ("first_name",)),
        (
            ["{{ profile['city'] }} {% if segment.affluent %}x{% endif %}"],
            ("city", "segment__affluent"),
        ),
        (["{{ profile.a }}", "{{ offer.code }} {{ profile.b }}"], ("a", "b")),
        (["{% for k in profile %}{{ k }}{% endfor %}"], None),
        (["{{ profile[offer.code] }}"], None),
        (["{% set p = profile %}{{ p.x }}"], None),
    ],
)
def test_which_fields_a_template_reads(templates: list[str], reads: tuple[str, ...] | None) -> None:
    content = compile_content({f"f{i}": t for i, t in enumerate(templates)}, html=False)
    assert _reads_of([r for _k, r in content if not isinstance(r, str)]) == reads
