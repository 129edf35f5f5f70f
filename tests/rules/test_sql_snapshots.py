"""Snapshots of the SQL generated for each dialect: a change to them is a visible diff."""

from __future__ import annotations

import datetime as dt

import pytest

from overture.rules import NUMBER_RESULT, Schema, Type, compile_rule

SCHEMA = Schema(
    profile={
        "age": Type.INT,
        "income": Type.FLOAT,
        "country": Type.STRING,
        "tags": Type.LIST,
        "last_purchase": Type.DATE,
        "last_login": Type.DATETIME,
    },
    context={"device": Type.STRING},
    segments=frozenset({"young"}),
)
NOW = dt.datetime(2026, 11, 23, 12, 0)

RULE = (
    "age >= 18 and country in ('FR', 'DE') and 'gold' not in tags "
    "and days_since(last_purchase) < 30"
)

SNAPSHOTS = {
    ("duckdb", RULE): (
        """("age" >= 18) AND ("country" IN ('FR', 'DE')) AND (NOT (CASE WHEN "tags" IS NULL """
        """THEN NULL ELSE LIST_CONTAINS("tags", 'gold') END)) AND (DATE_DIFF('day', """
        """CAST("last_purchase" AS DATE), CAST('2026-11-23' AS DATE)) < 30)"""
    ),
    ("postgres", RULE): (
        """("age" >= 18) AND ("country" IN ('FR', 'DE')) AND (NOT (CASE WHEN "tags" IS NULL """
        """THEN NULL ELSE 'gold' = ANY("tags") END)) AND ((CAST('2026-11-23' AS DATE) - """
        """CAST("last_purchase" AS DATE)) < 30)"""
    ),
    ("spark", RULE): (
        """(`age` >= 18) AND (`country` IN ('FR', 'DE')) AND (NOT (CASE WHEN `tags` IS NULL """
        """THEN NULL ELSE ARRAY_CONTAINS(`tags`, 'gold') END)) AND (DATEDIFF(CAST('2026-11-23' """
        """AS DATE), CAST(`last_purchase` AS DATE)) < 30)"""
    ),
    (
        "duckdb",
        "segment.young or context.device == 'app'",
    ): """"segment"."young" OR ("context"."device" = 'app')""",
    (
        "duckdb",
        "income / age > 1.5",
    ): """(CAST("income" AS DOUBLE) / NULLIF(CAST("age" AS DOUBLE), 0)) > CAST(1.5 AS DOUBLE)""",
    ("postgres", "round(income) > 2.5 and lower(min(country, 'ZZ')) < 'm'"): (
        """(CAST(ROUND(CAST("income" AS DECIMAL)) AS DOUBLE PRECISION) > CAST(2.5 AS DOUBLE """
        """PRECISION)) AND (LOWER(CASE WHEN "country" IS NULL THEN NULL ELSE LEAST("country" """
        """COLLATE "C", 'ZZ' COLLATE "C") COLLATE "default" END) COLLATE "C" < 'm' COLLATE "C")"""
    ),
    (
        "spark",
        "add_days(last_login, 2) > now()",
    ): """TIMESTAMPADD(DAY, 2, `last_login`) > CAST('2026-11-23 12:00:00' AS TIMESTAMP)""",
    (
        "duckdb",
        "max(age, 3) > 4",
    ): """CASE WHEN "age" IS NULL THEN NULL ELSE GREATEST("age", 3) END > 4""",
}


@pytest.mark.parametrize(("dialect", "source"), list(SNAPSHOTS))
def test_generated_sql(dialect: str, source: str) -> None:
    assert compile_rule(source, SCHEMA).sql(dialect, now=NOW) == SNAPSHOTS[dialect, source]


def test_value_expression_sql() -> None:
    weight = compile_rule("coalesce(income, 0.0) / 1000", SCHEMA, NUMBER_RESULT)
    assert weight.sql("duckdb") == (
        """CAST(COALESCE("income", CAST(0.0 AS DOUBLE)) AS DOUBLE) / """
        """NULLIF(CAST(1000 AS DOUBLE), 0)"""
    )


def test_unknown_dialect_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown SQL dialect"):
        compile_rule("age > 1", SCHEMA).sql("oracle")
