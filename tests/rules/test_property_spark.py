"""The rules SQL on Spark: the edge cases of test_edges.py, and the property test's random
rules over rows at the ends of every range, against the Python closure.

Spark answers a query in about half a second, so each example evaluates a batch of rules
in one SELECT (one column each) instead of one rule per query. Needs pyspark and Java 17+
(skipped, saying why, without them); one JVM serves the module, in the Spark tests' xdist
group."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from overture.rules import Instant, Type, compile_value, to_sql
from tests.rules import test_edges as edges
from tests.rules.strategies import NOW, expression, rows
from tests.rules.test_property import _names, _same, checked
from tests.spark import MARKS, require_spark

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

require_spark()
pytestmark = MARKS

_TYPES = [Type.BOOL, Type.INT, Type.FLOAT, Type.STRING, Type.DATE, Type.DATETIME]
BATCH = 12  # rules per query
Runner = Callable[[list[str], list[dict[str, Any]], dict[str, str]], list[list[Any]]]


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    from overture.batch.engines import local_spark

    session = local_spark("overture-rules-tests", cores=2, shuffle_partitions=2)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _runner(spark: SparkSession) -> Runner:
    """Rows go in with dates and datetimes as text (Python's conversion of a naive datetime
    to Spark uses the local zone) and are cast in SQL; results come back as text for the
    same reason, and are parsed here."""

    def run(exprs: list[str], data: list[dict[str, Any]], types: dict[str, str]) -> list[list[Any]]:
        columns = [c for c in data[0] if c != "rid"]
        texts = [
            {c: (v.isoformat(sep=" ") if isinstance(v, dt.datetime) else v.isoformat())
             if isinstance(v, (dt.date, dt.datetime)) else v for c, v in row.items()}
            for row in data
        ]  # fmt: skip
        schema = ", ".join(f"`{c}` {types.get(c, 'STRING')}" for c in ["rid", *columns])
        frame = spark.createDataFrame(texts, schema=schema)
        frame.createOrReplaceTempView("raw")
        typed = ", ".join(
            f"CAST(`{c}` AS {types[c + ':cast']}) AS `{c}`" if c + ":cast" in types else f"`{c}`"
            for c in ["rid", *columns]
        )
        select = ", ".join(f"{e} AS c{i}" for i, e in enumerate(exprs))
        sql = f"SELECT {select} FROM (SELECT {typed} FROM raw) t ORDER BY rid"
        return [list(r) for r in spark.sql(sql).collect()]

    return run


def _back(value: Any, t: Type | None) -> Any:
    if value is None:
        return None
    if t == Type.DATE:
        return dt.date.fromisoformat(value)
    if t == Type.DATETIME:
        return dt.datetime.fromisoformat(value)
    return value


def _as_text(sql: str, t: Type | None) -> str:
    return f"CAST({sql} AS STRING)" if t in (Type.DATE, Type.DATETIME) else sql


_PROPERTY_TYPES = {
    "rid": "INT", "i1": "BIGINT", "i2": "BIGINT", "f1": "DOUBLE", "f2": "DOUBLE",
    "s1": "STRING", "s2": "STRING", "b1": "BOOLEAN", "d1": "STRING", "d1:cast": "DATE",
    "d2": "STRING", "d2:cast": "DATE", "t1": "STRING", "t1:cast": "TIMESTAMP",
    "l1": "ARRAY<STRING>", "ctx_i": "BIGINT", "ctx_s": "STRING", "seg_a": "BOOLEAN",
}  # fmt: skip


@pytest.mark.parametrize("result_type", _TYPES)
@settings(
    max_examples=max(8, settings().max_examples // 12),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_python_and_spark_agree(
    spark: SparkSession, result_type: Type, data: st.DataObject
) -> None:
    sources = [data.draw(expression(result_type), label=f"rule {i}") for i in range(BATCH)]
    table = data.draw(st.lists(rows(), min_size=1, max_size=6), label="rows")
    trees = [checked(source, result_type) for source in sources]
    sqls = [to_sql(tree, "spark", names=_names, now=NOW) for tree in trees]
    data_rows = [{"rid": i, **row} for i, row in enumerate(table)]
    got = _runner(spark)([_as_text(s, result_type) for s in sqls], data_rows, _PROPERTY_TYPES)
    instant = Instant.at(NOW)
    for row, values in zip(table, got, strict=True):
        profile = {k: v for k, v in row.items() if not k.startswith(("ctx_", "seg_"))}
        context, segments = {"i": row["ctx_i"], "s": row["ctx_s"]}, {"a": row["seg_a"]}
        for source, sql, tree, value in zip(sources, sqls, trees, values, strict=True):
            py_value = compile_value(tree)(profile, context, segments, {}, instant)
            spark_value = _back(value, tree.type)
            assert _same(py_value, spark_value), (
                f"{source}\nSQL: {sql}\nrow: {row}\npython {py_value!r} != spark {spark_value!r}"
            )


_EDGE_TYPES = {
    "rid": "INT", "age": "BIGINT", "n": "BIGINT", "balance": "DOUBLE", "x": "DOUBLE",
    "s": "STRING", "d": "STRING", "d:cast": "DATE", "t": "STRING", "t:cast": "TIMESTAMP",
}  # fmt: skip


def test_the_edge_cases_on_spark(spark: SparkSession) -> None:
    """Every case of test_edges.py in one query: case i's rule read on row i. A rule that
    raised on any row (as integer overflow did with ANSI mode) would fail the whole query."""
    trees = [edges.tree_of(source) for source, _, _ in edges.CASES]
    sqls = [_as_text(to_sql(tree, "spark", now=NOW), tree.type) for tree in trees]
    data_rows = [{"rid": i, **edges.row_of(values)} for i, (_, values, _) in enumerate(edges.CASES)]
    got = _runner(spark)(sqls, data_rows, _EDGE_TYPES)
    for i, ((source, values, expected), tree) in enumerate(zip(edges.CASES, trees, strict=True)):
        value = _back(got[i][i], tree.type)
        assert edges.same(value, expected), f"{source} on {values}: Spark {value!r}\n{sqls[i]}"
