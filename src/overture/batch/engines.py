"""The SQL engines a batch runs on: DuckDB (embedded, the default) and Spark.

Allocation is a handful of statements that each turn tables into a new table, written
once in DuckDB's dialect; an engine runs them, translating through sqlglot when its own
dialect differs. Four operations are all it needs, so a new engine is a small class:

- `create(table, sql)`  materialise a query as `table` (replacing it; the query may read
                        the table it replaces; a query already in the engine's own
                        dialect, such as the candidates', says so and is run as is);
- `append(table, sql)`  add a query's rows to `table`;
- `load(table, columns, rows)`  a small table from Python values (policy limits, ...);
- `rows(sql)`           fetch a (small) result.

Tables are the session's own: DuckDB temporary tables, Spark temporary views over
checkpointed data (a checkpoint cuts the lineage, so round k's plan does not grow with k).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import duckdb
import sqlglot

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

WRITTEN_IN = "duckdb"  # the dialect allocation's statements are written in


class SqlEngine(Protocol):
    name: str
    dialect: str

    def create(self, table: str, sql: str, dialect: str = WRITTEN_IN) -> None: ...
    def append(self, table: str, sql: str) -> None: ...
    def load(
        self, table: str, columns: Sequence[tuple[str, str]], rows: Sequence[tuple[Any, ...]]
    ) -> None: ...
    def rows(self, sql: str) -> list[tuple[Any, ...]]: ...


class DuckDBEngine:
    """Statements run as written, on a DuckDB connection (an in-memory one by default)."""

    name = "duckdb"
    dialect = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection | None = None) -> None:
        self.con = con if con is not None else duckdb.connect()

    def create(self, table: str, sql: str, dialect: str = WRITTEN_IN) -> None:
        assert dialect == self.dialect, f"a {dialect} statement given to DuckDB"
        self._run(f"CREATE OR REPLACE TEMP TABLE {table} AS {sql}")

    def append(self, table: str, sql: str) -> None:
        self._run(f"INSERT INTO {table} {sql}")

    def load(
        self, table: str, columns: Sequence[tuple[str, str]], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        spec = ", ".join(f'"{name}" {type_}' for name, type_ in columns)
        self._run(f"CREATE OR REPLACE TEMP TABLE {table} ({spec})")
        if rows:
            marks = ", ".join("?" * len(columns))
            self.con.executemany(f"INSERT INTO {table} VALUES ({marks})", list(rows)).fetchall()

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.con.execute(sql).fetchall()

    def _run(self, sql: str) -> None:
        # DuckDB keeps a statement's result open until it is fetched
        self.con.execute(sql).fetchall()


class SparkEngine:
    """Statements translated to Spark SQL by sqlglot, run on a SparkSession."""

    name = "spark"
    dialect = "spark"

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark

    def create(self, table: str, sql: str, dialect: str = WRITTEN_IN) -> None:
        text = sql if dialect == self.dialect else to_spark(sql)
        frame = self.spark.sql(text).localCheckpoint(eager=True)
        frame.createOrReplaceTempView(table)

    def append(self, table: str, sql: str) -> None:
        old = self.spark.table(table)
        frame = old.unionByName(self.spark.sql(to_spark(sql))).localCheckpoint(eager=True)
        frame.createOrReplaceTempView(table)

    def load(
        self, table: str, columns: Sequence[tuple[str, str]], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        schema = ", ".join(
            f"`{name}` {sqlglot.exp.DataType.build(type_, dialect=WRITTEN_IN).sql('spark')}"
            for name, type_ in columns
        )
        self.spark.createDataFrame(list(rows), schema).createOrReplaceTempView(table)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.spark.sql(to_spark(sql)).collect()]


@functools.lru_cache(maxsize=256)
def to_spark(sql: str) -> str:
    """A statement written for DuckDB, in Spark SQL (QUALIFY becomes a subquery, lists
    become arrays, quoting becomes backticks)."""
    return sqlglot.transpile(sql, read=WRITTEN_IN, write="spark")[0]


def local_spark(app: str = "overture-batch", cores: int | None = None) -> SparkSession:
    """A Spark session in local mode (the JVM runs here; no cluster needed)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "the spark engine needs pyspark: pip install 'overture[spark]' (and Java 17+)"
        ) from exc
    master = f"local[{cores or '*'}]"
    return (
        SparkSession.builder.master(master)
        .appName(app)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
