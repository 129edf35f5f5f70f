"""A population (Parquet, CSV, or rows from a database registered as Arrow) read as the
audience's typed fields, odd data included, the way the runtime coerces a profile.

Real time and batch must decide alike on every input (docs/rules.md), and the rules'
compilers can only agree on values both sides hold in the same form. The runtime's coercion
(overture.engine.profile) and this reading agree on what odd data means:

- a float is finite: NaN, +inf and -inf are null (DuckDB and Spark order NaN above every
  number, so `arpu > 100` would be true in the batch and null in real time);
- a list holds no nulls: null items are dropped (`len(addons)` and, on Spark,
  `'x' not in addons` depend on them); an empty list stays empty, a null list null;
- an int is 64-bit: a number outside [-2**63, 2**63 - 1] (a CSV's HUGEINT or DECIMAL(20, 0)
  column, say) is null, instead of failing the whole query;
- a datetime is naive UTC: a zone-aware timestamp (DuckDB's TIMESTAMP WITH TIME ZONE, an
  ISO text with an offset) is converted to UTC before it is cast, so that the host's time
  zone never matters (DuckDB casts a zone-aware value in the connection's zone; the engines
  also set their session's zone to UTC).

`population_columns` is the one place where this is written: every reader of a population
(run.py's file, query and stored-profile paths on DuckDB and Spark, and `overture decide
--profiles`) selects through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from overture.batch.engines import DuckDBEngine
from overture.rules import Type
from overture.rules.sqlcompile import sql_type

# signed integer types of at most 64 bits: nothing to check (engine spellings, lower case)
_SMALL_INTS = frozenset(
    {"tinyint", "smallint", "integer", "int", "bigint", "int1", "int2", "int4", "int8"}
)


def population_columns(
    types: Mapping[str, str], fields: Mapping[str, Type], id_field: str, engine: str
) -> list[str]:
    """The SELECT list (DuckDB's dialect, as every batch statement: engines.WRITTEN_IN)
    that reads a table whose columns have `types` (name -> type as `engine`, "duckdb" or
    "spark", spells it: SqlEngine.columns) as the audience's `fields`, each cast to its
    type under its own name: the id as text, a missing field a typed NULL, extra columns
    left out, column names matched ignoring case. Odd data is read as the module says.

    Why one function: a rule is only as portable as the values it reads, so the readers
    (a file, a query's or the stored profiles' Arrow, on DuckDB or Spark, and `decide
    --profiles`) must not each have their own idea of NaN, null items, big integers or
    time zones; a rule written here once is the runtime's Coercer's, in SQL."""
    columns = {name.lower(): name for name in types}
    select = []
    for name, type_ in fields.items():
        target = "VARCHAR" if name == id_field else sql_type(type_).sql("duckdb")
        raw = columns.get(name.lower())
        if raw is None:
            select.append(f'CAST(NULL AS {target}) AS "{name}"')
            continue
        source = '"' + raw.replace('"', '""') + '"'
        raw_type = types[raw].lower()
        if _zoned(raw_type, engine):
            source = f"timezone('UTC', {source})"  # (DuckDB's: a TIMESTAMP, naive UTC)
        if name == id_field:
            value = f"CAST({source} AS VARCHAR)"
        else:
            value = _typed(source, raw_type, type_, target, engine)
        select.append(f'{value} AS "{name}"')
    return select


def _typed(source: str, raw_type: str, type_: Type, target: str, engine: str) -> str:
    textual = raw_type in ("varchar", "string", "text")
    if type_ is Type.FLOAT:
        value = f"CAST({source} AS DOUBLE)"
        return (
            f"CASE WHEN isnan({value}) OR abs({value}) = CAST('inf' AS DOUBLE) "
            f"THEN NULL ELSE {value} END"
        )
    if type_ is Type.INT:
        if raw_type in _SMALL_INTS:
            return f"CAST({source} AS BIGINT)"
        # a number that does not fit: null; anything else cast as usual (text that is no
        # number still fails, with the engine's message)
        return (
            f"CASE WHEN TRY_CAST({source} AS DOUBLE) IS NOT NULL "
            f"AND TRY_CAST({source} AS BIGINT) IS NULL THEN NULL "
            f"ELSE CAST({source} AS BIGINT) END"
        )
    if type_ is Type.LIST:
        if textual:
            # a list in a CSV: items joined with ';' (as `overture demo-profiles` writes);
            # an empty cell is an empty list (CSV cannot tell it from a missing one)
            source = (
                f"CASE WHEN coalesce(trim({source}), '') = '' THEN CAST([] AS VARCHAR[]) "
                f"ELSE string_split({source}, ';') END"
            )
        return f"list_filter(CAST({source} AS {target}), lambda e: e IS NOT NULL)"
    if type_ in (Type.DATE, Type.DATETIME) and textual:
        # ISO text with an offset is that instant (DuckDB's cast to TIMESTAMP would drop
        # the offset); without one it is UTC (the session's zone)
        instant = f"CAST({source} AS TIMESTAMPTZ)"
        if engine == "duckdb":
            instant = f"timezone('UTC', {instant})"
        return f"CAST({instant} AS {target})"
    return f"CAST({source} AS {target})"


def _zoned(raw_type: str, engine: str) -> bool:
    """A zone-aware timestamp column that DuckDB would cast in its session's zone. (Spark's
    TIMESTAMP is an instant too, cast in the session's zone, which SparkEngine sets to UTC;
    sqlglot cannot translate DuckDB's timezone() for it.)"""
    return engine == "duckdb" and raw_type in ("timestamp with time zone", "timestamptz")


def read_profile(
    path: str, fields: Mapping[str, Type], id_field: str, profile_id: str
) -> dict[str, Any] | None:
    """The profile `profile_id` of a .parquet (else CSV) file, its fields read as a batch
    reads that file (`population_columns`), or None when there is none. DuckDB's errors
    (no such file, a bad CSV) are raised as they are."""
    engine = DuckDBEngine()
    reader = "read_parquet" if path.lower().endswith((".parquet", ".pq")) else "read_csv_auto"
    quote = "'"
    source = f"{reader}({quote}{path.replace(quote, quote * 2)}{quote})"
    types = {
        str(name): str(type_)
        for name, type_, *_ in engine.con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    }
    key = next((c for c in types if c.lower() == id_field.lower()), None)
    if key is None:
        return None
    select = population_columns(types, fields, id_field, engine.name)
    quoted = '"' + key.replace('"', '""') + '"'
    cursor = engine.con.execute(
        f"SELECT {', '.join(select)} FROM {source} WHERE CAST({quoted} AS VARCHAR) = ?",
        [profile_id],
    )
    names = [d[0] for d in cursor.description or ()]
    row = cursor.fetchone()
    return None if row is None else dict(zip(names, row, strict=True))
