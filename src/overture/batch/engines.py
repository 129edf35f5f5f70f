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
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import duckdb
import pyarrow as pa
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
    def register(self, table: str, data: pa.Table) -> None: ...
    def columns(self, table: str) -> dict[str, str]: ...
    def read_file(self, table: str, path: str) -> None: ...
    def export(self, sql: str, path: str) -> None: ...
    def batches(self, sql: str, size: int = 50_000) -> Iterator[pa.RecordBatch]: ...


class DuckDBEngine:
    """Statements run as written, on a DuckDB connection (an in-memory one by default).

    The engine sets the connection's time zone to UTC, as the runtime's and SparkEngine's:
    DuckDB casts a TIMESTAMP WITH TIME ZONE (a zone-aware Parquet or Arrow column, a
    history read from PostgreSQL) to a TIMESTAMP or a DATE in the connection's zone, which
    is the host's by default, so that `date(last_login) == today()` would depend on the
    machine the batch runs on.
    """

    name = "duckdb"
    dialect = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection | None = None) -> None:
        self.con = con if con is not None else duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")

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
        if rows:  # through Arrow: executemany costs a statement per row
            data = pa.table(
                {f"c{i}": list(values) for i, values in enumerate(zip(*rows, strict=True))}
            )
            self.con.register("_overture_load", data)
            try:
                self._run(f"INSERT INTO {table} SELECT * FROM _overture_load")
            finally:
                self.con.unregister("_overture_load")

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return _interruptible(lambda: self.con.execute(sql).fetchall())

    def register(self, table: str, data: pa.Table) -> None:
        self.con.register(f"{table}_arrow", data)
        self._run(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM {table}_arrow")
        self.con.unregister(f"{table}_arrow")

    def columns(self, table: str) -> dict[str, str]:
        """Column name -> type, as the engine spells it."""
        rel = self.con.table(table)
        return {name: str(t) for name, t in zip(rel.columns, rel.dtypes, strict=True)}

    def read_file(self, table: str, path: str) -> None:
        reader = "read_parquet" if _kind(path) == "parquet" else "read_csv_auto"
        self.create(table, f"SELECT * FROM {reader}({_string(path)})")

    def export(self, sql: str, path: str) -> None:
        fmt = "PARQUET" if _kind(path) == "parquet" else "CSV, HEADER"
        self._run(f"COPY ({sql}) TO {_string(path)} (FORMAT {fmt})")

    def batches(self, sql: str, size: int = 50_000) -> Iterator[pa.RecordBatch]:
        reader = self.con.sql(sql).to_arrow_reader(size)
        yield from reader

    def _run(self, sql: str) -> None:
        # DuckDB keeps a statement's result open until it is fetched
        _interruptible(lambda: self.con.execute(sql).fetchall())


class SparkEngine:
    """Statements translated to Spark SQL by sqlglot, run on a SparkSession.

    The engine sets two of the session's SQL settings:

    - the session time zone is UTC, as the runtime's: DuckDB's TIMESTAMP has no time zone
      and becomes Spark's TIMESTAMP_NTZ, which Spark compares with a TIMESTAMP column (a
      population's `last_login`, say) in the session time zone;
    - constraint propagation is off: a checkpoint's plan keeps the constraints of the
      query it came from, and Spark (4.x) can leave one of them naming a column the query
      no longer has (`isnotnull(offer#995)`), which fails a later UNION of that table with
      "key not found". It only infers extra filters; allocation does not need them.
    """

    name = "spark"
    dialect = "spark"

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        spark.conf.set("spark.sql.session.timeZone", "UTC")
        spark.conf.set("spark.sql.constraintPropagation.enabled", "false")

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

    def register(self, table: str, data: pa.Table) -> None:
        self.spark.createDataFrame(data).createOrReplaceTempView(table)

    def columns(self, table: str) -> dict[str, str]:
        return dict(self.spark.table(table).dtypes)

    def read_file(self, table: str, path: str) -> None:
        reader = self.spark.read
        frame = (
            reader.parquet(path)
            if _kind(path) == "parquet"
            else reader.option("header", True).option("inferSchema", True).csv(path)
        )
        frame.createOrReplaceTempView(table)

    def export(self, sql: str, path: str) -> None:
        """A directory of part files, as Spark writes (one file per partition)."""
        frame = self.spark.sql(to_spark(sql)).write.mode("overwrite")
        if _kind(path) == "parquet":
            frame.parquet(path)
        else:
            frame.option("header", True).csv(path)

    def batches(self, sql: str, size: int = 50_000) -> Iterator[pa.RecordBatch]:
        yield from self.spark.sql(to_spark(sql)).toArrow().to_batches(size)


def _interruptible(run: Callable[[], list[tuple[Any, ...]]]) -> list[tuple[Any, ...]]:
    """DuckDB answers Ctrl-C by interrupting the query with an error: make it the
    KeyboardInterrupt it was, so that a run stops cleanly whatever it was doing."""
    try:
        return run()
    except duckdb.InterruptException as exc:
        raise KeyboardInterrupt from exc
    except RuntimeError as exc:
        if "interrupted" in str(exc).lower():
            raise KeyboardInterrupt from exc
        raise


def _kind(path: str) -> str:
    """parquet or csv, by the file's name."""
    lower = path.lower().rstrip("/")
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    if lower.endswith((".csv", ".csv.gz", ".tsv")):
        return "csv"
    raise ValueError(f"{path}: give a .parquet or .csv file")


def _string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@functools.lru_cache(maxsize=256)
def to_spark(sql: str) -> str:
    """A statement written for DuckDB, in Spark SQL (QUALIFY becomes a subquery, lists
    become arrays, quoting becomes backticks)."""
    return sqlglot.transpile(sql, read=WRITTEN_IN, write="spark")[0]


def local_spark(
    app: str = "overture-batch",
    cores: int | None = None,
    *,
    shuffle_partitions: int = 8,
    config: Mapping[str, str] | None = None,
) -> SparkSession:
    """A Spark session in local mode (the JVM runs here, bound to the loopback address; no
    cluster needed), in UTC like the runtime. `config` adds or overrides Spark settings
    (static ones, such as `spark.driver.memory`, only take effect in a new session)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "the spark engine needs pyspark: pip install 'overture[spark]' (and Java 17+)"
        ) from exc
    settings = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        **(config or {}),
    }
    builder = SparkSession.builder.master(f"local[{cores or '*'}]").appName(app)
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
