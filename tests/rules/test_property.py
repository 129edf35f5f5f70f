"""Python closure, reference interpreter and SQL agree on every input, nulls included.

DuckDB always; PostgreSQL too when OVERTURE_TEST_POSTGRES_URL is set (CI sets it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import duckdb
import psycopg
import pyarrow as pa
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from overture.batch.engines import DuckDBEngine
from overture.batch.population import population_columns
from overture.engine.profile import Coercer
from overture.rules import (
    POSTGRES_PRELUDE,
    Env,
    Instant,
    RuleError,
    Type,
    check,
    compile_value,
    evaluate,
    parse,
    to_sql,
)
from tests.integration import postgres_url
from tests.rules.strategies import NOW, SCHEMA, expression, rows

_TYPES = [Type.BOOL, Type.INT, Type.FLOAT, Type.STRING, Type.DATE, Type.DATETIME]
_COLUMNS = pa.schema([
    ("rid", pa.int32()), ("i1", pa.int64()), ("i2", pa.int64()), ("f1", pa.float64()),
    ("f2", pa.float64()), ("s1", pa.string()), ("s2", pa.string()), ("b1", pa.bool_()),
    ("d1", pa.date32()), ("d2", pa.date32()), ("t1", pa.timestamp("us")),
    ("l1", pa.list_(pa.string())), ("ctx_i", pa.int64()), ("ctx_s", pa.string()),
    ("seg_a", pa.bool_()),
])  # fmt: skip
_PG_COLUMNS = (
    "rid integer, i1 bigint, i2 bigint, f1 double precision, f2 double precision, s1 text, "
    "s2 text, b1 boolean, d1 date, d2 date, t1 timestamp, l1 text[], ctx_i bigint, ctx_s text, "
    "seg_a boolean"
)
Runner = Callable[[str, list[dict[str, Any]]], list[Any]]
_FIELDS = {
    "rid": Type.INT, **SCHEMA.profile, "ctx_i": Type.INT, "ctx_s": Type.STRING,
    "seg_a": Type.BOOL,
}  # fmt: skip
_PROFILE = Coercer(SCHEMA.profile, "profile")  # the runtime's reading of a profile


def _names(namespace: str, field: str) -> exp.Expr:
    prefix = {"profile": "", "context": "ctx_", "segment": "seg_"}[namespace]
    return exp.column(prefix + field, quoted=True)


@pytest.fixture(scope="module")
def duck() -> Iterator[Runner]:
    """Rows reach the SQL as a batch reads a population: through population_columns, which
    makes NaN and ±inf null and drops null list items (the Python side: the Coercer)."""
    con = duckdb.connect()
    engine = DuckDBEngine(con)

    def run(sql: str, data: list[dict[str, Any]]) -> list[Any]:
        table = pa.Table.from_pylist([{"rid": i, **row} for i, row in enumerate(data)], _COLUMNS)
        con.register("raw", table)
        read = ", ".join(population_columns(engine.columns("raw"), _FIELDS, "", "duckdb"))
        query = f"SELECT {sql} FROM (SELECT {read} FROM raw) t ORDER BY rid"
        return [r[0] for r in con.execute(query).fetchall()]

    yield run
    con.close()


@pytest.fixture(scope="module")
def postgres() -> Iterator[Runner]:
    with psycopg.connect(postgres_url()) as conn:
        conn.execute(POSTGRES_PRELUDE)  # the session's arithmetic functions (sqlcompile)
        conn.commit()

        def run(sql: str, data: list[dict[str, Any]]) -> list[Any]:
            names = _COLUMNS.names
            try:
                with conn.cursor() as cur:
                    cur.execute(f"CREATE TEMP TABLE t ({_PG_COLUMNS})")
                    cur.executemany(
                        f"INSERT INTO t VALUES ({', '.join(['%s'] * len(names))})",
                        [[i, *(row[c] for c in names[1:])] for i, row in enumerate(data)],
                    )
                    cur.execute(f"SELECT {sql} FROM t ORDER BY rid")
                    return [r[0] for r in cur.fetchall()]
            finally:
                conn.rollback()  # drops the temporary table

        yield run


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-12) or (a == b)
    if isinstance(a, (list, tuple)):
        return list(a) == list(b)
    return bool(a == b)


def checked(source: str, result_type: Type) -> Any:
    """The checked tree; a rule whose constants overflow is refused (RuleError), skipped."""
    try:
        return check(parse(source), SCHEMA, (result_type, Type.NULL))
    except RuleError as exc:
        assume("out of range" not in str(exc))
        raise


def _agree(data: st.DataObject, result_type: Type, dialect: str, run: Runner) -> None:
    source = data.draw(expression(result_type), label="rule")
    raw = dialect == "duckdb"  # DuckDB reads rows through the batch's population reader
    table = data.draw(st.lists(rows(raw), min_size=1, max_size=6), label="rows")
    tree = checked(source, result_type)
    closure = compile_value(tree)
    instant = Instant.at(NOW)
    sql = to_sql(tree, dialect, names=_names, now=NOW)
    from_sql = run(sql, table)
    for row, sql_value in zip(table, from_sql, strict=True):
        profile, problems = _PROFILE(row)
        assert not problems
        context, segments = {"i": row["ctx_i"], "s": row["ctx_s"]}, {"a": row["seg_a"]}
        py_value = closure(profile, context, segments, {}, instant)
        ref_value = evaluate(tree, Env(instant, profile, context, segments))
        assert _same(py_value, ref_value), f"closure {py_value!r} != interpreter {ref_value!r}"
        assert _same(py_value, sql_value), (
            f"{source}\nSQL: {sql}\nrow: {row}\npython {py_value!r} != {dialect} {sql_value!r}"
        )


@pytest.mark.slow
@pytest.mark.parametrize("result_type", _TYPES)
@settings(max_examples=max(250, settings().max_examples))
@given(data=st.data())
def test_python_and_duckdb_agree(duck: Runner, result_type: Type, data: st.DataObject) -> None:
    _agree(data, result_type, "duckdb", duck)


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("result_type", _TYPES)
@settings(max_examples=max(80, settings().max_examples // 4))
@given(data=st.data())
def test_python_and_postgresql_agree(
    postgres: Runner, result_type: Type, data: st.DataObject
) -> None:
    _agree(data, result_type, "postgres", postgres)
