"""Compile a checked rule to SQL through sqlglot, for the batch engines.

The SQL has the same meaning as the Python closure on every input, nulls included: SQL's
three-valued logic is the language's own, division and remainder by zero are made null
with NULLIF, float literals are cast to DOUBLE (engines read `1.5` as a decimal), and
functions whose engines disagree on nulls are wrapped in explicit CASEs. `today()` and
`now()` become literals of the run's instant, so a batch run is reproducible.

Names are resolved by a callback so that the batch engine decides where each namespace
lives; by default a profile field is a column of its own name and `context.x`,
`segment.x`, `offer.x` are column x of the table (or alias) named after the namespace.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlglot import exp

from overture.rules import nodes as n
from overture.rules.functions import (
    FLOAT_MAX,
    FUNCTIONS,
    SqlContext,
    binary_collation,
    float_literal,
    int_literal,
    null_if_any_null,
    when,
)
from overture.rules.types import Type

DIALECTS = ("duckdb", "postgres", "spark")
NameResolver = Callable[[str, str], exp.Expr]

_SQL_TYPES = {
    Type.STRING: "VARCHAR",
    Type.INT: "BIGINT",
    Type.FLOAT: "DOUBLE",
    Type.BOOL: "BOOLEAN",
    Type.DATE: "DATE",
    Type.DATETIME: "TIMESTAMP",
    Type.LIST: "ARRAY<VARCHAR>",
}
_COMPARE: dict[str, type[exp.Binary]] = {
    "==": exp.EQ,
    "!=": exp.NEQ,
    "<": exp.LT,
    "<=": exp.LTE,
    ">": exp.GT,
    ">=": exp.GTE,
}
_SPARK_TRY = {"+": "TRY_ADD", "-": "TRY_SUBTRACT", "*": "TRY_MULTIPLY"}
_PG_OPS = {"+": "add", "-": "sub", "*": "mul", "/": "div"}

# PostgreSQL raises on integer overflow and on float overflow and underflow, and a CASE
# cannot test for a float product's overflow without computing it, so the SQL for
# PostgreSQL calls these session functions for + - * / (pg_temp: nothing is left in the
# database). Run POSTGRES_PRELUDE once per session before the SQL. The float ones take the
# plain operator first and pay for an exception block only with operands near the ends of
# the range. Integers: null outside 64 bits; floats: null past ±1.8e308, 0 on underflow.
POSTGRES_PRELUDE = """
CREATE OR REPLACE FUNCTION pg_temp.overture_iadd(a bigint, b bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT AS
$$ SELECT CASE WHEN a::numeric + b BETWEEN -9223372036854775808 AND 9223372036854775807
THEN a + b END $$;
CREATE OR REPLACE FUNCTION pg_temp.overture_isub(a bigint, b bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT AS
$$ SELECT CASE WHEN a::numeric - b BETWEEN -9223372036854775808 AND 9223372036854775807
THEN a - b END $$;
CREATE OR REPLACE FUNCTION pg_temp.overture_imul(a bigint, b bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT AS
$$ SELECT CASE WHEN a::numeric * b BETWEEN -9223372036854775808 AND 9223372036854775807
THEN a * b END $$;
CREATE OR REPLACE FUNCTION pg_temp.overture_fadd(a float8, b float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
  IF abs(a) < 1e300 AND abs(b) < 1e300 THEN RETURN a + b; END IF;
  BEGIN RETURN a + b;
  EXCEPTION WHEN numeric_value_out_of_range THEN RETURN NULL; END;
END $$;
CREATE OR REPLACE FUNCTION pg_temp.overture_fsub(a float8, b float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
  IF abs(a) < 1e300 AND abs(b) < 1e300 THEN RETURN a - b; END IF;
  BEGIN RETURN a - b;
  EXCEPTION WHEN numeric_value_out_of_range THEN RETURN NULL; END;
END $$;
CREATE OR REPLACE FUNCTION pg_temp.overture_fmul(a float8, b float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
  IF a = 0 OR b = 0 OR (abs(a) BETWEEN 1e-150 AND 1e150 AND abs(b) BETWEEN 1e-150 AND 1e150)
  THEN RETURN a * b; END IF;
  BEGIN RETURN a * b;
  EXCEPTION WHEN numeric_value_out_of_range THEN
    RETURN CASE WHEN abs(a) > 1 OR abs(b) > 1 THEN NULL ELSE 0 END;
  END;
END $$;
CREATE OR REPLACE FUNCTION pg_temp.overture_fdiv(a float8, b float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
  IF a = 0 OR (abs(a) BETWEEN 1e-150 AND 1e150 AND abs(b) BETWEEN 1e-150 AND 1e150)
  THEN RETURN a / b; END IF;
  BEGIN RETURN a / b;
  EXCEPTION WHEN numeric_value_out_of_range THEN
    RETURN CASE WHEN abs(a) > abs(b) THEN NULL ELSE 0 END;
  END;
END $$;
"""


def default_names(namespace: str, field: str) -> exp.Expr:
    if namespace == "profile":
        return exp.column(field, quoted=True)
    return exp.column(field, table=namespace, quoted=True)


def to_sqlglot(
    tree: n.Node,
    *,
    dialect: str = "duckdb",
    names: NameResolver = default_names,
    now: dt.datetime | None = None,
) -> exp.Expr:
    """The sqlglot expression of a checked rule (see module docstring)."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r}; use one of {', '.join(DIALECTS)}")
    instant = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    ctx = SqlContext(
        dialect,
        today=exp.cast(exp.Literal.string(instant.date().isoformat()), "DATE"),
        now=exp.cast(exp.Literal.string(instant.isoformat(sep=" ")), "TIMESTAMP"),
    )
    sql: exp.Expr = _Sql(ctx, names).sql(tree).unnest()
    return sql


def to_sql(
    tree: n.Node,
    dialect: str = "duckdb",
    *,
    names: NameResolver = default_names,
    now: dt.datetime | None = None,
) -> str:
    """The SQL text of a checked rule in `dialect` (duckdb, postgres or spark)."""
    return to_sqlglot(tree, dialect=dialect, names=names, now=now).sql(dialect=dialect)


def literal(value: object, t: Type | None = None) -> exp.Expr:
    """A value known when the SQL is built (an offer's field, a run's context) as SQL."""
    if isinstance(value, (list, tuple, frozenset)):
        return exp.Array(expressions=[_Sql.literal(v, Type.STRING) for v in value])
    return _Sql.literal(value, t)


def sql_type(t: Type) -> exp.DataType:
    return exp.DataType.build(_SQL_TYPES[t])


class _Sql:
    def __init__(self, ctx: SqlContext, names: NameResolver) -> None:
        self.ctx = ctx
        self.names = names

    def sql(self, node: n.Node) -> exp.Expr:
        """SQL for `node`, parenthesised unless atomic, so that it can go anywhere."""
        e = self._sql(node)
        # Operators first: sqlglot's And/Or are also Func subclasses.
        if isinstance(e, (exp.Binary, exp.Unary, exp.Is, exp.In, exp.Not)):
            return exp.Paren(this=e)
        atomic = (
            exp.Column,
            exp.Literal,
            exp.Paren,
            exp.Func,
            exp.Case,
            exp.Cast,
            exp.Boolean,
            exp.Null,
        )
        return e if isinstance(e, atomic) else exp.Paren(this=e)

    def _sql(self, node: n.Node) -> exp.Expr:
        match node:
            case n.Literal(value=v):
                return self.literal(v, node.type)
            case n.Name(namespace=ns, field=f):
                return self.names(ns, f)
            case n.Unary(op="-", operand=a) if node.type == Type.INT:
                return self.int_op("-", int_literal(0), self.sql(_(a)))
            case n.Unary(op="-", operand=a):
                return exp.Neg(this=self.sql(_(a)))
            case n.Unary(operand=a):
                return self.sql(_(a))
            case n.Binary(op=op, left=a, right=b):
                return self.binary(op, _(a), _(b), node.type)
            case n.Compare(op=op, left=a, right=b):
                left, right = self.sql(_(a)), self.sql(_(b))
                if op not in ("==", "!=") and _(a).type == Type.STRING:
                    left = binary_collation(left, self.ctx)
                    right = binary_collation(right, self.ctx)
                return _COMPARE[op](this=left, expression=right)
            case n.BoolOp(op="and", operands=ops):
                return exp.and_(*(self.sql(o) for o in ops))
            case n.BoolOp(operands=ops):
                return exp.or_(*(self.sql(o) for o in ops))
            case n.Not(operand=a):
                return exp.Not(this=self.sql(_(a)))
            case n.In(needle=a, haystack=h, negated=neg):
                test = self.membership(_(a), _(h))
                return exp.Not(this=exp.Paren(this=test)) if neg else test
            case n.IsNull(operand=a, negated=neg):
                test = exp.Is(this=self.sql(_(a)), expression=exp.Null())
                return exp.Not(this=exp.Paren(this=test)) if neg else test
            case n.Call(function=f, args=args):
                sql_args = [self.sql(a) for a in args]
                types = [a.type or Type.NULL for a in args]
                return FUNCTIONS[f].sql(sql_args, types, self.ctx)
            case n.IfElse(condition=c, then=t, otherwise=o):
                return exp.Case(
                    ifs=[exp.If(this=self.sql(_(c)), true=self.sql(_(t)))], default=self.sql(_(o))
                )
        raise TypeError(f"cannot compile {type(node).__name__} to SQL")

    @staticmethod
    def literal(v: object, t: Type | None) -> exp.Expr:
        if v is None:
            if t is None or t == Type.NULL:
                return exp.Null()
            return exp.Cast(this=exp.Null(), to=sql_type(t))
        if isinstance(v, bool):
            return exp.Boolean(this=v)
        if isinstance(v, int):
            return int_literal(v)
        if isinstance(v, float):
            text = repr(v)
            if text in ("inf", "-inf", "nan"):
                return exp.cast(exp.Literal.string(text), "DOUBLE")
            return float_literal(v)
        if isinstance(v, str):
            return exp.Literal.string(v)
        if isinstance(v, dt.datetime):
            return exp.cast(exp.Literal.string(v.isoformat(sep=" ")), "TIMESTAMP")
        if isinstance(v, dt.date):
            return exp.cast(exp.Literal.string(v.isoformat()), "DATE")
        raise TypeError(f"no SQL literal for {v!r}")

    def binary(self, op: str, a: n.Node, b: n.Node, t: Type | None) -> exp.Expr:
        x, y = self.sql(a), self.sql(b)
        if op == "+" and t == Type.STRING:
            return exp.DPipe(this=x, expression=y)
        if op in ("+", "-", "*"):
            return self.int_op(op, x, y) if t == Type.INT else self.float_op(op, x, y)
        zero = exp.Literal.number(0)
        if op == "/":
            x, y = exp.cast(x, "DOUBLE"), exp.Nullif(this=exp.cast(y, "DOUBLE"), expression=zero)
            if self.ctx.dialect != "postgres" and _at_least_one(b):
                return exp.Div(this=x, expression=y)  # dividing by 1 or more cannot overflow
            return self.float_op("/", x, y)
        # -2**63 % -1 overflows in DuckDB; the remainder by -1 is 0 (null for a null x)
        by_minus_one = exp.EQ(this=y.copy(), expression=int_literal(-1))
        return exp.Case(
            ifs=[exp.If(this=by_minus_one, true=exp.Mul(this=x.copy(), expression=zero.copy()))],
            default=exp.Mod(this=x, expression=exp.Nullif(this=y, expression=zero)),
        )

    def int_op(self, op: str, x: exp.Expr, y: exp.Expr) -> exp.Expr:
        """x op y on 64-bit integers, null on overflow (engines raise or wrap there)."""
        if self.ctx.dialect == "postgres":
            return _pg_call(f"overture_i{_PG_OPS[op]}", x, y)
        if self.ctx.dialect == "spark":  # long operands: DATEDIFF, SIZE… give 32-bit ints
            return exp.Anonymous(
                this=_SPARK_TRY[op], expressions=[exp.cast(x, "BIGINT"), exp.cast(y, "BIGINT")]
            )
        computed = {"+": exp.Add, "-": exp.Sub, "*": exp.Mul}[op](
            this=exp.cast(x, "BIGINT"), expression=y
        )
        return exp.Anonymous(this="TRY", expressions=[computed])

    def float_op(self, op: str, x: exp.Expr, y: exp.Expr) -> exp.Expr:
        """x op y on doubles, null when not finite (PostgreSQL raises there instead)."""
        if self.ctx.dialect == "postgres":
            return _pg_call(f"overture_f{_PG_OPS[op]}", x, y)
        kind = {"+": exp.Add, "-": exp.Sub, "*": exp.Mul, "/": exp.Div}[op]
        computed = kind(this=x, expression=y)
        test = exp.LTE(this=exp.Abs(this=computed.copy()), expression=float_literal(FLOAT_MAX))
        return when(test, computed)

    def membership(self, needle: n.Node, haystack: n.Node) -> exp.Expr:
        x = self.sql(needle)
        if isinstance(haystack, n.ListLit):
            return exp.In(this=x, expressions=[self.sql(i) for i in haystack.items])
        items = self.sql(haystack)
        if self.ctx.dialect == "postgres":
            found: exp.Expr = exp.EQ(
                this=x.copy(), expression=exp.Any(this=exp.Paren(this=items.copy()))
            )
        elif self.ctx.dialect == "spark":
            found = exp.Anonymous(this="ARRAY_CONTAINS", expressions=[items.copy(), x.copy()])
        else:
            found = exp.Anonymous(this="LIST_CONTAINS", expressions=[items.copy(), x.copy()])
        return null_if_any_null([x, items], found)


def _at_least_one(node: n.Node) -> bool:
    value = node.value if isinstance(node, n.Literal) else None
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) >= 1


def _pg_call(name: str, *args: exp.Expr) -> exp.Expr:
    return exp.Dot(
        this=exp.var("pg_temp"), expression=exp.Anonymous(this=name, expressions=list(args))
    )


def _(node: n.Node | None) -> n.Node:
    assert node is not None
    return node
