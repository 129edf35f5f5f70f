"""Python closure, reference interpreter and DuckDB SQL agree on every input, nulls included."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from overture.rules import Env, Instant, Type, check, compile_value, evaluate, parse, to_sql
from tests.rules.strategies import NOW, SCHEMA, expression, rows

_COLUMNS = pa.schema(
    [
        ("rid", pa.int32()),
        ("i1", pa.int64()),
        ("i2", pa.int64()),
        ("f1", pa.float64()),
        ("f2", pa.float64()),
        ("s1", pa.string()),
        ("s2", pa.string()),
        ("b1", pa.bool_()),
        ("d1", pa.date32()),
        ("d2", pa.date32()),
        ("t1", pa.timestamp("us")),
        ("l1", pa.list_(pa.string())),
        ("ctx_i", pa.int64()),
        ("ctx_s", pa.string()),
        ("seg_a", pa.bool_()),
    ]
)


def _names(namespace: str, field: str) -> exp.Expr:
    prefix = {"profile": "", "context": "ctx_", "segment": "seg_"}[namespace]
    return exp.column(prefix + field, quoted=True)


@pytest.fixture(scope="module")
def db() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    yield con
    con.close()


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-12) or (a == b)
    if isinstance(a, (list, tuple)):
        return list(a) == list(b)
    return bool(a == b)


def _run_sql(db: duckdb.DuckDBPyConnection, sql: str, data: list[dict[str, Any]]) -> list[Any]:
    table = pa.Table.from_pylist([{"rid": i, **row} for i, row in enumerate(data)], _COLUMNS)
    db.register("t", table)
    return [r[0] for r in db.execute(f"SELECT {sql} FROM t ORDER BY rid").fetchall()]


@pytest.mark.parametrize(
    "result_type", [Type.BOOL, Type.INT, Type.FLOAT, Type.STRING, Type.DATE, Type.DATETIME]
)
@settings(max_examples=max(250, settings().max_examples))
@given(data=st.data())
def test_python_and_duckdb_agree(
    db: duckdb.DuckDBPyConnection, result_type: Type, data: st.DataObject
) -> None:
    source = data.draw(expression(result_type), label="rule")
    table = data.draw(st.lists(rows(), min_size=1, max_size=6), label="rows")
    tree = check(parse(source), SCHEMA, (result_type, Type.NULL))
    closure = compile_value(tree)
    instant = Instant.at(NOW)
    sql = to_sql(tree, "duckdb", names=_names, now=NOW)
    from_sql = _run_sql(db, sql, table)
    for row, sql_value in zip(table, from_sql, strict=True):
        profile = {k: v for k, v in row.items() if not k.startswith(("ctx_", "seg_"))}
        context, segments = {"i": row["ctx_i"], "s": row["ctx_s"]}, {"a": row["seg_a"]}
        py_value = closure(profile, context, segments, {}, instant)
        ref_value = evaluate(tree, Env(instant, profile, context, segments))
        assert _same(py_value, ref_value), f"closure {py_value!r} != interpreter {ref_value!r}"
        assert _same(py_value, sql_value), (
            f"{source}\nSQL: {sql}\nrow: {row}\npython {py_value!r} != duckdb {sql_value!r}"
        )
