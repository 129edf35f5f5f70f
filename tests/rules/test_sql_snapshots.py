"""Snapshots of the SQL generated for each dialect: a change to them is a visible diff."""

from __future__ import annotations

import datetime as dt

import pytest

from overture.rules import NUMBER_RESULT, Schema, Type, compile_rule
from overture.rules.functions import case_tables

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
    ): (
        # a quotient past ±1.8e308 is null, as in Python
        """CASE WHEN ABS(CAST("income" AS DOUBLE) / NULLIF(CAST("age" AS DOUBLE), 0)) <= """
        """CAST(1.7976931348623157e+308 AS DOUBLE) THEN CAST("income" AS DOUBLE) / """
        """NULLIF(CAST("age" AS DOUBLE), 0) END > CAST(1.5 AS DOUBLE)"""
    ),
    ("postgres", "round(income) > 2 and min(country, 'ZZ') < 'm'"): (
        # halves away from zero on the exact fraction; null past 64 bits
        """(CASE WHEN "income" >= CAST(-9.223372036854776E+18 AS DOUBLE PRECISION) AND """
        """"income" < CAST(9.223372036854776e+18 AS DOUBLE PRECISION) THEN CAST(SIGN("income") """
        """* (FLOOR(ABS("income")) + CASE WHEN ABS("income") - FLOOR(ABS("income")) >= CAST(0.5 """
        """AS DOUBLE PRECISION) THEN 1 ELSE 0 END) AS BIGINT) END > 2) AND (CASE WHEN "country" """
        """IS NULL THEN NULL ELSE LEAST("country" COLLATE "C", 'ZZ' COLLATE "C") COLLATE """
        """"default" END COLLATE "C" < 'm' COLLATE "C")"""
    ),
    (
        "spark",
        "add_days(last_login, 2) > now()",
    ): (
        # null outside years 1-9999, tested before the date is moved
        """CASE WHEN 2 BETWEEN DATEDIFF(CAST('0001-01-01' AS DATE), CAST(`last_login` AS DATE)) """
        """AND DATEDIFF(CAST('9999-12-31' AS DATE), CAST(`last_login` AS DATE)) THEN """
        """TIMESTAMPADD(DAY, 2, `last_login`) END > CAST('2026-11-23 12:00:00' AS TIMESTAMP)"""
    ),
    # integers: null past 64 bits; floats: null past ±1.8e308 (PostgreSQL: session functions)
    ("duckdb", "age * 2 - 1 > income * 1.5"): (
        """TRY(CAST(TRY(CAST("age" AS BIGINT) * 2) AS BIGINT) - 1) > CASE WHEN ABS("income" * """
        """CAST(1.5 AS DOUBLE)) <= CAST(1.7976931348623157e+308 AS DOUBLE) THEN "income" * """
        """CAST(1.5 AS DOUBLE) END"""
    ),
    ("spark", "age * 2 - 1 > income * 1.5"): (
        """TRY_SUBTRACT(CAST(TRY_MULTIPLY(CAST(`age` AS BIGINT), CAST(2 AS BIGINT)) AS BIGINT), """
        """CAST(1 AS BIGINT)) > CASE WHEN ABS(`income` * CAST(1.5 AS DOUBLE)) <= """
        """CAST(1.7976931348623157e+308 AS DOUBLE) THEN `income` * CAST(1.5 AS DOUBLE) END"""
    ),
    ("postgres", "age * 2 - 1 > income * 1.5"): (
        """(pg_temp.overture_isub((pg_temp.overture_imul("age", 2)), 1)) > """
        """(pg_temp.overture_fmul("income", CAST(1.5 AS DOUBLE PRECISION)))"""
    ),
    (
        "duckdb",
        "max(age, 3) > 4",
    ): """CASE WHEN "age" IS NULL THEN NULL ELSE GREATEST("age", 3) END > 4""",
}


@pytest.mark.parametrize(("dialect", "source"), list(SNAPSHOTS))
def test_generated_sql(dialect: str, source: str) -> None:
    assert compile_rule(source, SCHEMA).sql(dialect, now=NOW) == SNAPSHOTS[dialect, source]


@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "spark"])
def test_case_mapping_is_one_table_in_every_dialect(dialect: str) -> None:
    """lower()/upper() translate by the language's own table: engines' own mappings differ."""
    lowered, _ = case_tables()
    sql = compile_rule("lower(country) == 'x'", SCHEMA).sql(dialect)
    assert sql.startswith("TRANSLATE(")
    assert "".join(lowered) in sql and "".join(lowered.values()) in sql


def test_value_expression_sql() -> None:
    weight = compile_rule("coalesce(income, 0.0) / 1000", SCHEMA, NUMBER_RESULT)
    assert weight.sql("duckdb") == (
        """CAST(COALESCE("income", CAST(0.0 AS DOUBLE)) AS DOUBLE) / """
        """NULLIF(CAST(1000 AS DOUBLE), 0)"""
    )


def test_unknown_dialect_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown SQL dialect"):
        compile_rule("age > 1", SCHEMA).sql("oracle")
