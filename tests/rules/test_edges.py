"""Values at the ends of every range: the same answer from the Python closure, the
interpreter, DuckDB and PostgreSQL (Spark: test_edges_spark.py). Each case was found
disagreeing by a differential run (issue 17); docs/rules.md "Numbers", "Dates", "Strings"
state the meaning these cases hold the compilers to.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from typing import Any

import duckdb
import psycopg
import pyarrow as pa
import pytest

from overture.rules import (
    NUMBER_RESULT,
    POSTGRES_PRELUDE,
    Env,
    Instant,
    RuleError,
    Schema,
    Type,
    check,
    compile_rule,
    compile_value,
    evaluate,
    parse,
    to_sql,
)
from tests.integration import postgres_url

SCHEMA = Schema(
    profile={
        "age": Type.INT,
        "n": Type.INT,
        "balance": Type.FLOAT,
        "x": Type.FLOAT,
        "s": Type.STRING,
        "d": Type.DATE,
        "t": Type.DATETIME,
    }
)
NOW = dt.datetime(2026, 11, 23, 12, 0)
ARROW = pa.schema([
    ("age", pa.int64()), ("n", pa.int64()), ("balance", pa.float64()), ("x", pa.float64()),
    ("s", pa.string()), ("d", pa.date32()), ("t", pa.timestamp("us")),
])  # fmt: skip
PG_COLUMNS = (
    "age bigint, n bigint, balance double precision, x double precision, s text, d date, "
    "t timestamp"
)
TOP, BOTTOM = 2**63 - 1, -(2**63)
HUGE = 1.7976931348623157e308
LAST_DAY, FIRST_TIME = dt.date(9999, 12, 31), dt.datetime(1, 1, 1)

# (expression, row, expected value)
CASES: list[tuple[str, dict[str, Any], Any]] = [
    # integers are 64-bit: a result outside is null (Python computed it, SQL raised)
    ("age * 2", {"age": 2**62}, None),
    ("age + 1", {"age": TOP}, None),
    ("age - 1", {"age": BOTTOM}, None),
    ("-age", {"age": BOTTOM}, None),
    ("abs(age)", {"age": BOTTOM}, None),
    # a small literal is a 32-bit INTEGER to DuckDB and PostgreSQL: abs(-2**31) raised
    ("abs(-2147483648)", {}, 2**31),
    ("abs(0 if age > 1 else -2147483648)", {"age": 0}, 2**31),
    ("age * n", {"age": 2**32, "n": 2**31}, None),
    ("age * n", {"age": 2**31, "n": 2**31}, 2**62),
    ("age % -1", {"age": BOTTOM}, 0),  # DuckDB raised
    ("age % n", {"age": -7, "n": 2}, -1),
    ("age + 1", {"age": TOP - 1}, TOP),
    # an int compared with a float is compared as a float (as every engine does)
    ("age == 9007199254740992.0", {"age": 2**53 + 1}, True),
    ("age > 9007199254740992.0", {"age": 2**53 + 1}, False),
    ("age in (9007199254740992.0, 1)", {"age": 2**53 + 1}, True),
    ("balance in (9007199254740993, 1)", {"balance": 2.0**53}, True),
    ("coalesce(age, 1.5) == 9007199254740992.0", {"age": 2**53 + 1}, True),
    ("(age if True else 1.5) < 9007199254740992.0", {"age": 2**53 + 1}, False),
    # floats are finite: past ±1.8e308 the result is null; underflow gives 0
    ("balance * 10", {"balance": 1e308}, None),  # PostgreSQL raised
    ("balance + x", {"balance": HUGE, "x": HUGE}, None),
    ("balance - x", {"balance": -HUGE, "x": HUGE}, None),
    ("balance / x", {"balance": 1e308, "x": 1e-10}, None),
    ("balance / x", {"balance": 1e-300, "x": 1e300}, 0.0),  # PostgreSQL raised
    ("balance * x", {"balance": 1e-200, "x": 1e-200}, 0.0),  # PostgreSQL raised
    ("balance * x", {"balance": 5e-324, "x": 0.5}, 0.0),
    ("balance * x", {"balance": 1e200, "x": 1e100}, 1e300),
    ("balance * 0.5", {"balance": 5e-324}, 0.0),
    # round, floor, ceil give 64-bit ints; halves go away from zero
    ("round(balance)", {"balance": 0.49999999999999994}, 0),  # 1 on PostgreSQL
    ("round(balance)", {"balance": 2.5}, 3),
    ("round(balance)", {"balance": -2.5}, -3),
    ("round(balance)", {"balance": 1e300}, None),  # Python raised OverflowError
    ("round(balance)", {"balance": -(2.0**63)}, BOTTOM),
    ("floor(balance)", {"balance": -1e19}, None),
    ("ceil(balance)", {"balance": 2.0**63}, None),
    ("ceil(balance)", {"balance": 9.223372036854775e18}, 9223372036854774784),
    ("round(balance) % 2", {"balance": 3.0}, 1),
    # dates stay in years 1 to 9999
    ("add_days(d, 1)", {"d": LAST_DAY}, None),  # Python raised, SQL went on to year 10000
    ("add_days(d, 0)", {"d": LAST_DAY}, LAST_DAY),
    ("add_days(d, age)", {"d": dt.date(2026, 1, 1), "age": 2**62}, None),  # SQL cast raised
    ("add_days(d, -1)", {"d": dt.date(1, 1, 1)}, None),
    ("add_days(t, -1)", {"t": FIRST_TIME}, None),
    ("add_days(t, 1)", {"t": dt.datetime(9999, 12, 30, 23, 59)}, dt.datetime(9999, 12, 31, 23, 59)),
    ("days_between(d, date('9999-12-31'))", {"d": dt.date(1, 1, 1)}, 3652058),
    ("weekday(d)", {"d": dt.date(1, 1, 1)}, 1),
    # case mapping: one character for one, the same table everywhere
    ("lower(s)", {"s": "ΟΔΟΣ"}, "οδοσ"),  # Python: final sigma 'οδος'
    ("upper(s)", {"s": "ßǰΐﬁ"}, "ßǰΐﬁ"),  # Python: 'SSJ̌Ϊ́FI', DuckDB: 'ẞ…'
    ("lower(s)", {"s": "İK"}, "İk"),  # Python: 'i̇k'
    ("upper(s)", {"s": "ſé𐐨"}, "SÉ𐐀"),
    ("len(upper(s))", {"s": "ß"}, 1),
    # trim takes spaces only (DuckDB also took U+00A0 and U+3000)
    ("trim(s)", {"s": " \u00a0a\u3000 "}, "\u00a0a\u3000"),
]


def same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-15, abs_tol=0.0) or a == b
    return bool(a == b)


def row_of(values: dict[str, Any]) -> dict[str, Any]:
    return {name: values.get(name) for name in ARROW.names}


@pytest.fixture(scope="module")
def duck() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    yield con
    con.close()


@pytest.fixture(scope="module")
def pg() -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(postgres_url()) as conn:
        conn.execute(POSTGRES_PRELUDE)
        conn.commit()
        yield conn


def tree_of(source: str) -> Any:
    return check(parse(source), SCHEMA, (Type.INT, Type.FLOAT, Type.STRING, Type.BOOL,
                                          Type.DATE, Type.DATETIME, Type.NULL))  # fmt: skip


@pytest.mark.parametrize(("source", "values", "expected"), CASES)
def test_python_and_the_interpreter(source: str, values: dict[str, Any], expected: Any) -> None:
    tree = tree_of(source)
    row = row_of(values)
    got = compile_value(tree)(row, {}, {}, {}, Instant.at(NOW))
    assert same(got, expected), f"{source} on {values}: closure {got!r}, expected {expected!r}"
    assert type(got) is type(expected)  # round() gives an int, a float stays a float
    reference = evaluate(tree, Env(Instant.at(NOW), row))
    assert same(reference, expected), f"interpreter {reference!r}"


@pytest.mark.parametrize(("source", "values", "expected"), CASES)
def test_duckdb(
    duck: duckdb.DuckDBPyConnection, source: str, values: dict[str, Any], expected: Any
) -> None:
    duck.register("r", pa.Table.from_pylist([row_of(values)], ARROW))
    sql = to_sql(tree_of(source), "duckdb", now=NOW)
    ((got,),) = duck.execute(f"SELECT {sql} FROM r").fetchall()
    assert same(got, expected), f"{source} on {values}: DuckDB {got!r}\n{sql}"


@pytest.mark.integration
@pytest.mark.parametrize(("source", "values", "expected"), CASES)
def test_postgresql(
    pg: psycopg.Connection[Any], source: str, values: dict[str, Any], expected: Any
) -> None:
    sql = to_sql(tree_of(source), "postgres", now=NOW)
    try:
        with pg.cursor() as cur:
            cur.execute(f"CREATE TEMP TABLE r ({PG_COLUMNS})")
            row = row_of(values)
            cur.execute(
                f"INSERT INTO r VALUES ({', '.join(['%s'] * len(row))})", list(row.values())
            )
            cur.execute(f"SELECT {sql} FROM r")
            (got,) = cur.fetchone() or (None,)
    finally:
        pg.rollback()
    assert same(got, expected), f"{source} on {values}: PostgreSQL {got!r}\n{sql}"


# -- what the checker refuses, and what it no longer refuses -----------------------------
@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("age == 9223372036854775808", "too large"),
        ("age == 99999999999999999999", "too large"),
        ("age > 9223372036854775807 + 1", "out of range"),  # folding past 64 bits
        ("age > 4611686018427387904 * 2", "out of range"),
        ("balance > 1e308 * 10", "out of range"),
        ("d > add_days(date('9999-12-31'), 1)", "out of range"),
        ("s == 'a\\0b'", "NUL"),
        ("s == 'a\x00b'", "NUL"),
        ("t > datetime('0001-01-01T00:30:00+01:00')", "not a datetime"),  # was OverflowError
        ("age == coalesce(" + ", ".join(["n"] * 200) + ")", "at most 64"),  # was SyntaxError
    ],
)
def test_what_the_checker_can_see_is_refused(source: str, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        compile_rule(source, SCHEMA)


@pytest.mark.parametrize(
    "source",
    [
        "age == 9223372036854775807",
        "age == -9223372036854775808",
        "round(balance) % 2 == 1",  # the checker's own hint for a float remainder
        "age == coalesce(" + ", ".join(["n"] * 64) + ")",
    ],
)
def test_what_the_checker_accepts(source: str) -> None:
    compile_rule(source, SCHEMA)


def test_a_long_coalesce_compiles_flat() -> None:
    rule = compile_rule("coalesce(" + ", ".join(["n"] * 63) + ", age)", SCHEMA, NUMBER_RESULT)
    assert rule.value({"age": 4}, {}, {}, {}, now=NOW) == 4
