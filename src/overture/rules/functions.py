"""The fixed function library of the rule language.

Each function is described once: how it types its arguments, what it computes in Python,
and what SQL it becomes in each dialect. Keeping the three side by side is what keeps the
real-time and batch engines in agreement; the property test holds them to it.

Unless a function says otherwise, a null argument makes the result null (as in SQL), so
the Python implementations below only ever see non-null values.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlglot import exp

from overture.rules import nodes as n
from overture.rules.types import Type

PyImpl = Callable[..., object]


@dataclass(frozen=True)
class SqlContext:
    """What SQL generation needs beyond the tree: the dialect and the evaluation instant."""

    dialect: str
    today: exp.Expr
    now: exp.Expr


# A function's SQL builder. Its arguments arrive parenthesised where needed, and the SQL
# compiler parenthesises what it returns, so builders need not care about precedence.
SqlImpl = Callable[[list[exp.Expr], list[Type], SqlContext], exp.Expr]


class ArgumentError(Exception):
    """A call whose arguments do not fit; `index` is the argument at fault (-1: the call)."""

    def __init__(self, message: str, index: int = -1, hint: str | None = None) -> None:
        super().__init__(message)
        self.index = index
        self.hint = hint


@dataclass(frozen=True)
class Bound:
    """A call resolved against its argument types."""

    type: Type
    py: PyImpl | None  # None: a special form the compilers handle themselves
    nullable: bool | None = None  # None: nullable when any argument is
    needs_instant: bool = False  # py takes the evaluation Instant as its first argument
    # The same computation as a Python expression over `{t}` (the Instant) and `{0}`, `{1}`…
    # (argument values), which the code generator inlines to save a call on hot paths.
    inline: str | None = None
    # py may return None for arguments that are not null: its result is out of range (an
    # integer past 64 bits, a date past 9999). The checker makes such a call nullable.
    partial: bool = False


@dataclass(frozen=True)
class Function:
    name: str
    signature: str
    doc: str
    bind: Callable[[Sequence[n.Node]], Bound]
    sql: SqlImpl
    pure: bool = True  # False: depends on the evaluation instant, never folded


# -- typing helpers ------------------------------------------------------------------------
DATES = (Type.DATE, Type.DATETIME)
NUMBERS = (Type.INT, Type.FLOAT)


def unify(a: Type, b: Type) -> Type | None:
    """The common type of two values (for coalesce, min/max, if/else, lists), or None."""
    if a == b:
        return a
    if a == Type.NULL:
        return b
    if b == Type.NULL:
        return a
    if a.is_numeric and b.is_numeric:
        return Type.FLOAT
    return None


def _arity(args: Sequence[n.Node], count: int, signature: str) -> None:
    if len(args) != count:
        plural = "argument" if count == 1 else "arguments"
        raise ArgumentError(f"takes {count} {plural}, got {len(args)}", hint=f"usage: {signature}")


def _expect(args: Sequence[n.Node], index: int, allowed: tuple[Type, ...], what: str) -> Type:
    t = args[index].type
    assert t is not None
    if t == Type.NULL or t in allowed:
        return t
    raise ArgumentError(f"argument {index + 1} must be {what}, not {t}", index)


def _simple(
    params: tuple[tuple[Type, ...], ...],
    what: tuple[str, ...],
    result: Type,
    py: PyImpl,
    signature: str,
    *,
    needs_instant: bool = False,
    inline: Callable[[list[Type]], str | None] | None = None,
) -> Callable[[Sequence[n.Node]], Bound]:
    def bind(args: Sequence[n.Node]) -> Bound:
        _arity(args, len(params), signature)
        types = [_expect(args, i, allowed, what[i]) for i, allowed in enumerate(params)]
        return Bound(
            result, py, needs_instant=needs_instant, inline=inline(types) if inline else None
        )

    return bind


# -- the ranges of values -------------------------------------------------------------------
# Integers are 64-bit and floats finite, in every path: a result outside is null (SQL
# engines raise, wrap or saturate there, each its own way; docs/rules.md "Numbers").
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
FLOAT_MAX = sys.float_info.max
_TWO_63 = 2.0**63


def int64(v: int) -> int | None:
    """The integer, or None when it does not fit in 64 bits."""
    return v if INT64_MIN <= v <= INT64_MAX else None


def finite(v: float) -> float | None:
    """The float, or None for NaN and ±inf."""
    return v if -FLOAT_MAX <= v <= FLOAT_MAX else None


def whole(x: float) -> int | None:
    """A float that holds an integer (rounded already) as a 64-bit int, or None."""
    return int(x) if -_TWO_63 <= x < _TWO_63 else None


def arithmetic(op: str, a: object, b: object, result: Type | None) -> object:
    """`a op b` for + - * / % on non-null numbers, with the language's ranges: the one
    definition the interpreter and constant folding use (the compilers inline the same)."""
    x: float = a  # type: ignore[assignment]
    y: float = b  # type: ignore[assignment]
    if op == "+":
        r = x + y
    elif op == "-":
        r = x - y
    elif op == "*":
        r = x * y
    elif y == 0:  # division and remainder by zero are null, as NULLIF(b, 0) makes them in SQL
        return None
    elif op == "/":
        return finite(float(x) / float(y))
    else:
        return sql_mod(int(x), int(y))  # the checker admits only whole numbers
    if result == Type.INT:
        return int64(int(r))
    return finite(float(r))


# -- Python semantics that differ from Python's own -----------------------------------------
def round_half_away(x: float) -> float:
    """Round to the nearest integer, halves away from zero (SQL's ROUND, not Python's)."""
    ax = abs(x)
    f = math.floor(ax)
    r = f + 1.0 if ax - f >= 0.5 else float(f)
    return math.copysign(r, x)


def sql_mod(a: int, b: int) -> int:
    """Remainder with the sign of the dividend, as SQL's % (Python's % floors instead)."""
    r = abs(a) % abs(b)
    return -r if a < 0 else r


def _as_date(x: dt.date) -> dt.date:
    return x.date() if isinstance(x, dt.datetime) else x


def _day(d: dt.date) -> dt.date:
    return _as_date(d)


def _date_of(arg: str, t: Type) -> str:
    """Inline code for the date of a date-or-datetime argument."""
    return f"{arg}.date()" if t == Type.DATETIME else arg


# -- SQL helpers ---------------------------------------------------------------------------
def null_if_any_null(args: list[exp.Expr], result: exp.Expr) -> exp.Expr:
    """CASE WHEN a IS NULL OR b IS NULL THEN NULL ELSE result END (engines disagree on nulls)."""
    maybe_null = [a for a in args if not isinstance(a, (exp.Literal, exp.Boolean))]
    if not maybe_null:
        return result
    test = exp.or_(*(exp.Is(this=a.copy(), expression=exp.Null()) for a in maybe_null))
    return exp.Case(ifs=[exp.If(this=test, true=exp.Null())], default=result)


def _cast(e: exp.Expr, to: str) -> exp.Expr:
    return exp.cast(e, to)


def _days_between(start: exp.Expr, end: exp.Expr, ctx: SqlContext) -> exp.Expr:
    """Whole days from start to end, both cast to DATE first (a datetime counts by its date)."""
    s, e = _cast(start, "DATE"), _cast(end, "DATE")
    if ctx.dialect == "postgres":
        return exp.Sub(this=e, expression=s)
    if ctx.dialect == "spark":
        return exp.Anonymous(this="DATEDIFF", expressions=[e, s])
    return exp.Anonymous(this="DATE_DIFF", expressions=[exp.Literal.string("day"), s, e])


FIRST_DAY, LAST_DAY = dt.date(1, 1, 1), dt.date(9999, 12, 31)


def _add_days(d: exp.Expr, days: exp.Expr, t: Type, ctx: SqlContext) -> exp.Expr:
    """The moved date, null outside years 1-9999 (Python's range): the days are tested
    against the distance to either end before anything is computed, so no engine sees a
    date or an INTEGER out of its range."""
    first = exp.cast(exp.Literal.string(FIRST_DAY.isoformat()), "DATE")
    last = exp.cast(exp.Literal.string(LAST_DAY.isoformat()), "DATE")
    fits = exp.Between(
        this=days.copy(),
        low=_days_between(d.copy(), first, ctx),
        high=_days_between(d.copy(), last, ctx),
    )
    if t == Type.DATE:
        if ctx.dialect == "spark":  # DATE_ADD takes an INT number of days, not a BIGINT
            moved: exp.Expr = exp.Anonymous(this="DATE_ADD", expressions=[d, _cast(days, "INT")])
        else:  # DuckDB and PostgreSQL add an INTEGER (not a BIGINT) number of days to a DATE
            moved = exp.Add(this=d, expression=_cast(days, "INTEGER"))
    elif ctx.dialect == "spark":
        moved = exp.Anonymous(this="TIMESTAMPADD", expressions=[exp.var("DAY"), days, d])
    else:
        interval = exp.Interval(this=exp.Literal.string("1 day"))
        moved = exp.Add(this=d, expression=exp.Mul(this=interval, expression=days))
    return when(fits, moved)


# -- the library ---------------------------------------------------------------------------
def _bind_today(args: Sequence[n.Node]) -> Bound:
    _arity(args, 0, "today()")
    return Bound(Type.DATE, lambda t: t.today, nullable=False, needs_instant=True)


def _bind_now(args: Sequence[n.Node]) -> Bound:
    _arity(args, 0, "now()")
    return Bound(Type.DATETIME, lambda t: t.now, nullable=False, needs_instant=True)


def _bind_date(args: Sequence[n.Node]) -> Bound:
    _arity(args, 1, "date('YYYY-MM-DD') or date(datetime)")
    arg = args[0]
    if arg.type == Type.DATETIME:
        return Bound(Type.DATE, _as_date)
    if isinstance(arg, n.Literal) and isinstance(arg.value, str):
        try:
            value = dt.date.fromisoformat(arg.value)
        except ValueError:
            raise ArgumentError(
                f"{arg.value!r} is not a date", 0, "write it as 'YYYY-MM-DD'"
            ) from None
        return Bound(Type.DATE, lambda _s, v=value: v, nullable=False)
    raise ArgumentError("date() takes a literal 'YYYY-MM-DD' or a datetime", 0)


def parse_datetime(text: str) -> dt.datetime:
    """ISO 8601 to the naive-UTC datetime the language works with."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _bind_datetime(args: Sequence[n.Node]) -> Bound:
    _arity(args, 1, "datetime('YYYY-MM-DDTHH:MM:SS') or datetime(date)")
    arg = args[0]
    if arg.type == Type.DATE:
        return Bound(Type.DATETIME, lambda d: dt.datetime(d.year, d.month, d.day))
    if isinstance(arg, n.Literal) and isinstance(arg.value, str):
        try:
            value = parse_datetime(arg.value)
        except (ValueError, OverflowError):  # '0001-01-01T00:30+01:00' is before year 1 in UTC
            raise ArgumentError(
                f"{arg.value!r} is not a datetime",
                0,
                "write it as 'YYYY-MM-DDTHH:MM:SS' (UTC, or with an offset), in years 1-9999",
            ) from None
        return Bound(Type.DATETIME, lambda _s, v=value: v, nullable=False)
    raise ArgumentError("datetime() takes a literal ISO 8601 string or a date", 0)


def _sql_date(a: list[exp.Expr], t: list[Type], ctx: SqlContext) -> exp.Expr:
    return _cast(a[0], "DATE")


def _sql_datetime(a: list[exp.Expr], t: list[Type], ctx: SqlContext) -> exp.Expr:
    return _cast(a[0], "TIMESTAMP")


def _bind_add_days(args: Sequence[n.Node]) -> Bound:
    _arity(args, 2, "add_days(date, days)")
    t = _expect(args, 0, DATES, "a date or datetime")
    _expect(args, 1, (Type.INT,), "an int")
    return Bound(Type.DATE if t == Type.NULL else t, _add_days_py, partial=True)


def _add_days_py(d: dt.date, k: int) -> dt.date | None:
    try:
        return d + dt.timedelta(days=k)
    except OverflowError:  # before year 1 or after 9999: null, as the SQL makes it
        return None


def _bind_len(args: Sequence[n.Node]) -> Bound:
    _arity(args, 1, "len(string or list)")
    _expect(args, 0, (Type.STRING, Type.LIST), "a string or a list")
    return Bound(Type.INT, len)


def _sql_len(a: list[exp.Expr], t: list[Type], ctx: SqlContext) -> exp.Expr:
    if t[0] == Type.LIST:
        if ctx.dialect == "postgres":
            return exp.Anonymous(this="CARDINALITY", expressions=a)
        if ctx.dialect == "spark":  # size(NULL) is -1 in Spark's legacy mode
            return null_if_any_null(a, exp.Anonymous(this="SIZE", expressions=[a[0].copy()]))
        return exp.Anonymous(this="LEN", expressions=a)
    return exp.Length(this=a[0])


def _round(x: float) -> int | None:
    return whole(round_half_away(x)) if -FLOAT_MAX <= x <= FLOAT_MAX else None


def _floor(x: float) -> int | None:
    return int64(math.floor(x)) if -FLOAT_MAX <= x <= FLOAT_MAX else None


def _ceil(x: float) -> int | None:
    return int64(math.ceil(x)) if -FLOAT_MAX <= x <= FLOAT_MAX else None


def _abs_int(x: int) -> int | None:
    return int64(abs(x))  # abs(-2**63) does not fit


def _bind_abs(args: Sequence[n.Node]) -> Bound:
    _arity(args, 1, "abs(number)")
    t = _expect(args, 0, NUMBERS, "a number")
    if t == Type.INT:
        return Bound(t, _abs_int, partial=True)
    return Bound(Type.FLOAT, abs)


def _bind_to_int(name: str) -> Callable[[Sequence[n.Node]], Bound]:
    """round, floor and ceil give an int (so that `round(x) % 2` works): null past 64 bits."""
    on_float = {"round": _round, "floor": _floor, "ceil": _ceil}[name]

    def bind(args: Sequence[n.Node]) -> Bound:
        _arity(args, 1, f"{name}(number)")
        t = _expect(args, 0, NUMBERS, "a number")
        if t == Type.INT:
            return Bound(t, lambda x: x)
        return Bound(Type.INT, on_float, partial=True)

    return bind


def float_literal(value: float) -> exp.Expr:
    return exp.cast(exp.Literal.number(repr(value)), "DOUBLE")


def int_literal(value: int) -> exp.Expr:
    lit = exp.Literal.number(value)
    return lit if -(2**31) <= value < 2**31 else exp.cast(lit, "BIGINT")


def when(test: exp.Expr, value: exp.Expr) -> exp.Expr:
    """CASE WHEN test THEN value END (else null)."""
    return exp.Case(ifs=[exp.If(this=test, true=value)])


def _sql_abs(a: list[exp.Expr], t: list[Type], ctx: SqlContext) -> exp.Expr:
    if t[0] != Type.INT:
        return exp.Abs(this=a[0])
    # abs(-2**63) does not fit: null, where engines raise or wrap. On 64 bits: a small
    # literal is a 32-bit INTEGER to DuckDB and PostgreSQL, whose abs(-2**31) overflows
    # (as int_op casts its operands)
    fits = exp.GT(this=a[0].copy(), expression=int_literal(INT64_MIN))
    return when(fits, exp.Abs(this=exp.cast(a[0], "BIGINT")))


def _sql_to_int(name: str) -> SqlImpl:
    def sql(a: list[exp.Expr], t: list[Type], ctx: SqlContext) -> exp.Expr:
        if t[0] == Type.INT:
            return a[0]  # rounding an integer is the integer
        x = a[0]
        if name == "round" and ctx.dialect == "postgres":
            # round(double) rounds halves to even there, and through DECIMAL it would round
            # 0.49999999999999994 up: halves away from zero by hand, on the exact fraction
            ax = exp.Abs(this=x.copy())
            fraction = exp.Sub(this=ax.copy(), expression=exp.Floor(this=ax.copy()))
            up = exp.Case(
                ifs=[
                    exp.If(
                        this=exp.GTE(this=fraction, expression=float_literal(0.5)),
                        true=exp.Literal.number(1),
                    )
                ],
                default=exp.Literal.number(0),
            )
            magnitude = exp.Add(this=exp.Floor(this=ax), expression=up)
            rounded: exp.Expr = exp.Mul(
                this=exp.Anonymous(this="SIGN", expressions=[x.copy()]),
                expression=exp.Paren(this=magnitude),
            )
        elif name == "round":
            rounded = exp.Round(this=x.copy())
        else:
            rounded = (exp.Floor if name == "floor" else exp.Ceil)(this=x.copy())
        fits = exp.and_(
            exp.GTE(this=x.copy(), expression=float_literal(-_TWO_63)),
            exp.LT(this=x.copy(), expression=float_literal(_TWO_63)),
        )
        return when(fits, _cast(rounded, "BIGINT"))

    return sql


def _bind_extreme(name: str) -> Callable[[Sequence[n.Node]], Bound]:
    pick = max if name == "max" else min

    def bind(args: Sequence[n.Node]) -> Bound:
        if len(args) < 2:
            raise ArgumentError(
                f"takes at least 2 arguments, got {len(args)}", hint=f"usage: {name}(a, b, ...)"
            )
        t: Type | None = Type.NULL
        for i, arg in enumerate(args):
            assert arg.type is not None
            if arg.type in (Type.BOOL, Type.LIST):
                raise ArgumentError(
                    f"{name}() compares numbers, strings or dates, not {arg.type}", i
                )
            t = unify(t, arg.type) if t is not None else None
            if t is None:
                raise ArgumentError(
                    f"{name}() arguments must have one type; argument {i + 1} is {arg.type}", i
                )
        assert t is not None
        if t == Type.FLOAT:
            return Bound(t, lambda *xs: float(pick(xs)))
        return Bound(t, lambda *xs: pick(xs))

    return bind


def binary_collation(e: exp.Expr, ctx: SqlContext) -> exp.Expr:
    """Strings order by code point in the language (as in Python, DuckDB and Spark); in
    PostgreSQL that takes the "C" collation, whatever the database's own collation is."""
    if ctx.dialect != "postgres":
        return e
    return exp.Collate(this=e, expression=exp.Identifier(this="C", quoted=True))


def _sql_extreme(name: str) -> SqlImpl:
    def sql(a: list[exp.Expr], t: list[Type], ctx: SqlContext) -> exp.Expr:
        args = [x.copy() for x in a]
        strings = bool(t) and all(x in (Type.STRING, Type.NULL) for x in t)
        if strings:  # every operand: two different explicit collations would clash
            args = [binary_collation(x, ctx) for x in args]
        # Anonymous: sqlglot's own Greatest adds a dialect-specific null rule on top of ours
        call: exp.Expr = exp.Anonymous(
            this="GREATEST" if name == "max" else "LEAST", expressions=args
        )
        if strings and ctx.dialect == "postgres":
            # a collation travels with the value: give the result back the default one, or
            # lower()/upper() on it would map only ASCII letters
            call = exp.Collate(this=call, expression=exp.Identifier(this="default", quoted=True))
        return null_if_any_null(a, call)

    return sql


def _bind_coalesce(args: Sequence[n.Node]) -> Bound:
    if len(args) < 2:
        raise ArgumentError(
            f"takes at least 2 arguments, got {len(args)}",
            hint="usage: coalesce(value, fallback, ...)",
        )
    t: Type = Type.NULL
    for i, arg in enumerate(args):
        assert arg.type is not None
        u = unify(t, arg.type)
        if u is None:
            raise ArgumentError(
                f"coalesce() arguments must have one type; argument {i + 1} is "
                f"{arg.type}, the ones before are {t}",
                i,
            )
        t = u
    return Bound(t, None, nullable=all(a.nullable for a in args))


def _bind_is_null(args: Sequence[n.Node]) -> Bound:
    _arity(args, 1, "is_null(value)")
    return Bound(Type.BOOL, None, nullable=False)


def _sql_trim(a: list[exp.Expr], t: list[Type], ctx: SqlContext) -> exp.Expr:
    # the space character only: DuckDB's TRIM(s) also strips U+00A0, U+3000 and the like
    return exp.Trim(this=a[0], expression=exp.Literal.string(" "))


# -- case mapping ----------------------------------------------------------------------------
# lower() and upper() map each character to its one-character case partner, and leave a
# character alone where it has none: 'ß' stays 'ß' (Python makes 'SS', DuckDB 'ẞ'), 'İ'
# lowers to 'İ' (Python makes 'i̇'), and 'Σ' always lowers to 'σ' (Python picks 'ς' at the
# end of a word). Engines map case each their own way (ICU, utf8proc, the C library, Java's
# full mappings), so every path applies the same table, built here from Python's Unicode
# data: str.translate in Python, TRANSLATE() in SQL.
@functools.cache
def case_tables() -> tuple[dict[str, str], dict[str, str]]:
    """(lower, upper): every character with a one-character case partner, and the partner.
    Built on first use (~0.1 s), not at import; case pairs all lie in the first two planes."""
    lower_table, upper_table = {}, {}
    for code in range(0x20000):
        ch = chr(code)
        low, up = ch.lower(), ch.upper()
        if low != ch and len(low) == 1:
            lower_table[ch] = low
        if up != ch and len(up) == 1:
            upper_table[ch] = up
    return lower_table, upper_table


@functools.cache
def _translations() -> tuple[dict[int, str], dict[int, str]]:
    low, up = case_tables()
    return str.maketrans(low), str.maketrans(up)


def lower(s: str) -> str:
    """Lower case, character by character (see the table above)."""
    return s.lower() if s.isascii() else s.translate(_translations()[0])


def upper(s: str) -> str:
    """Upper case, character by character (see the table above)."""
    return s.upper() if s.isascii() else s.translate(_translations()[1])


def _sql_case(which: int) -> SqlImpl:
    def sql(a: list[exp.Expr], t: list[Type], ctx: SqlContext) -> exp.Expr:
        table = case_tables()[which]
        source = exp.Literal.string("".join(table))
        target = exp.Literal.string("".join(table.values()))
        return exp.Anonymous(this="TRANSLATE", expressions=[a[0], source, target])

    return sql


def _sql_contains(a: list[exp.Expr], t: list[Type], ctx: SqlContext) -> exp.Expr:
    if ctx.dialect == "postgres":
        return exp.GT(
            this=exp.Anonymous(this="STRPOS", expressions=a), expression=exp.Literal.number(0)
        )
    if ctx.dialect == "spark":
        return exp.Anonymous(this="CONTAINS", expressions=a)
    return exp.Anonymous(this="CONTAINS", expressions=a)


def _sql_ends_with(a: list[exp.Expr], t: list[Type], ctx: SqlContext) -> exp.Expr:
    if ctx.dialect == "postgres":
        tail = exp.Anonymous(this="RIGHT", expressions=[a[0], exp.Length(this=a[1].copy())])
        # RIGHT(s, 0) is '' in PostgreSQL, so an empty suffix matches, as in Python
        return exp.EQ(this=tail, expression=a[1])
    return exp.Anonymous(this="ENDSWITH" if ctx.dialect == "spark" else "SUFFIX", expressions=a)


def _sql_weekday(a: list[exp.Expr], t: list[Type], ctx: SqlContext) -> exp.Expr:
    d = _cast(a[0], "DATE")
    if ctx.dialect == "postgres":
        return _cast(exp.Extract(this=exp.var("ISODOW"), expression=d), "BIGINT")
    if ctx.dialect == "spark":  # DAYOFWEEK: 1 = Sunday
        shifted = exp.Add(
            this=exp.Anonymous(this="DAYOFWEEK", expressions=[d]), expression=exp.Literal.number(5)
        )
        return exp.Add(
            this=exp.Mod(this=exp.Paren(this=shifted), expression=exp.Literal.number(7)),
            expression=exp.Literal.number(1),
        )
    return exp.Anonymous(this="ISODOW", expressions=[d])


def _part(cls: type[exp.Year | exp.Month | exp.Day]) -> SqlImpl:
    def sql(a: list[exp.Expr], t: list[Type], ctx: SqlContext) -> exp.Expr:
        return _cast(cls(this=_cast(a[0], "DATE")), "BIGINT")

    return sql


def _fn(
    name: str,
    signature: str,
    doc: str,
    bind: Callable[[Sequence[n.Node]], Bound],
    sql: SqlImpl,
    *,
    pure: bool = True,
) -> Function:
    return Function(name, signature, doc, bind, sql, pure)


_S, _I, _L = (Type.STRING,), (Type.INT,), (Type.LIST,)
_STR = "a string"

FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in [
        # dates
        _fn(
            "today",
            "today() -> date",
            "The date of the decision (UTC).",
            _bind_today,
            lambda a, t, c: c.today,
            pure=False,
        ),
        _fn(
            "now",
            "now() -> datetime",
            "The instant of the decision (UTC).",
            _bind_now,
            lambda a, t, c: c.now,
            pure=False,
        ),
        _fn(
            "date",
            "date('YYYY-MM-DD') | date(datetime) -> date",
            "A date literal, or the date part of a datetime.",
            _bind_date,
            _sql_date,
        ),
        _fn(
            "datetime",
            "datetime('YYYY-MM-DDTHH:MM:SS') | datetime(date) -> datetime",
            "A datetime literal (UTC, or with an offset), or midnight of a date.",
            _bind_datetime,
            _sql_datetime,
        ),
        _fn(
            "days_since",
            "days_since(date | datetime) -> int",
            "Whole days from the value's date to today; negative for a future date.",
            _simple(
                (DATES,),
                ("a date or datetime",),
                Type.INT,
                lambda t, d: (t.today - _day(d)).days,
                "days_since(date)",
                needs_instant=True,
                inline=lambda ts: f"({{t}}.today - {_date_of('{0}', ts[0])}).days",
            ),
            lambda a, t, c: _days_between(a[0], c.today, c),
            pure=False,
        ),
        _fn(
            "days_until",
            "days_until(date | datetime) -> int",
            "Whole days from today to the value's date; negative for a past date.",
            _simple(
                (DATES,),
                ("a date or datetime",),
                Type.INT,
                lambda t, d: (_day(d) - t.today).days,
                "days_until(date)",
                needs_instant=True,
                inline=lambda ts: f"({_date_of('{0}', ts[0])} - {{t}}.today).days",
            ),
            lambda a, t, c: _days_between(c.today, a[0], c),
            pure=False,
        ),
        _fn(
            "days_between",
            "days_between(start, end) -> int",
            "Whole days from start's date to end's date.",
            _simple(
                (DATES, DATES),
                ("a date or datetime",) * 2,
                Type.INT,
                lambda a, b: (_day(b) - _day(a)).days,
                "days_between(start, end)",
            ),
            lambda a, t, c: _days_between(a[0], a[1], c),
        ),
        _fn(
            "add_days",
            "add_days(date | datetime, int) -> same type",
            "The date (or datetime) moved by a number of days.",
            _bind_add_days,
            lambda a, t, c: _add_days(a[0], a[1], t[0], c),
        ),
        _fn(
            "year",
            "year(date | datetime) -> int",
            "The year.",
            _simple(
                (DATES,),
                ("a date or datetime",),
                Type.INT,
                lambda d: d.year,
                "year(date)",
                inline=lambda ts: "{0}.year",
            ),
            _part(exp.Year),
        ),
        _fn(
            "month",
            "month(date | datetime) -> int",
            "The month, 1 to 12.",
            _simple(
                (DATES,),
                ("a date or datetime",),
                Type.INT,
                lambda d: d.month,
                "month(date)",
                inline=lambda ts: "{0}.month",
            ),
            _part(exp.Month),
        ),
        _fn(
            "day",
            "day(date | datetime) -> int",
            "The day of the month, 1 to 31.",
            _simple(
                (DATES,),
                ("a date or datetime",),
                Type.INT,
                lambda d: d.day,
                "day(date)",
                inline=lambda ts: "{0}.day",
            ),
            _part(exp.Day),
        ),
        _fn(
            "weekday",
            "weekday(date | datetime) -> int",
            "ISO day of the week: 1 Monday … 7 Sunday.",
            _simple(
                (DATES,),
                ("a date or datetime",),
                Type.INT,
                lambda d: d.isoweekday(),
                "weekday(date)",
            ),
            _sql_weekday,
        ),
        # strings
        _fn(
            "lower",
            "lower(string) -> string",
            "Lower case.",
            _simple((_S,), (_STR,), Type.STRING, lower, "lower(s)"),
            _sql_case(0),
        ),
        _fn(
            "upper",
            "upper(string) -> string",
            "Upper case.",
            _simple((_S,), (_STR,), Type.STRING, upper, "upper(s)"),
            _sql_case(1),
        ),
        _fn(
            "trim",
            "trim(string) -> string",
            "Without leading and trailing spaces.",
            _simple((_S,), (_STR,), Type.STRING, lambda s: s.strip(" "), "trim(s)"),
            _sql_trim,
        ),
        _fn(
            "len",
            "len(string | list) -> int",
            "Number of characters, or of list items.",
            _bind_len,
            _sql_len,
        ),
        _fn(
            "contains",
            "contains(string, part) -> bool",
            "Whether part occurs in the string.",
            _simple((_S, _S), (_STR, _STR), Type.BOOL, lambda s, p: p in s, "contains(s, part)"),
            _sql_contains,
        ),
        _fn(
            "starts_with",
            "starts_with(string, prefix) -> bool",
            "Whether the string starts so.",
            _simple((_S, _S), (_STR, _STR), Type.BOOL, str.startswith, "starts_with(s, prefix)"),
            lambda a, t, c: exp.StartsWith(this=a[0], expression=a[1]),
        ),
        _fn(
            "ends_with",
            "ends_with(string, suffix) -> bool",
            "Whether the string ends so.",
            _simple((_S, _S), (_STR, _STR), Type.BOOL, str.endswith, "ends_with(s, suffix)"),
            _sql_ends_with,
        ),
        # numbers
        _fn(
            "abs",
            "abs(number) -> number",
            "Absolute value.",
            _bind_abs,
            _sql_abs,
        ),
        _fn(
            "round",
            "round(number) -> int",
            "Nearest integer; halves away from zero; null past 64 bits.",
            _bind_to_int("round"),
            _sql_to_int("round"),
        ),
        _fn(
            "floor",
            "floor(number) -> int",
            "Largest integer not above; null past 64 bits.",
            _bind_to_int("floor"),
            _sql_to_int("floor"),
        ),
        _fn(
            "ceil",
            "ceil(number) -> int",
            "Smallest integer not below; null past 64 bits.",
            _bind_to_int("ceil"),
            _sql_to_int("ceil"),
        ),
        _fn(
            "min",
            "min(a, b, ...) -> same type",
            "The smallest; null if any is null.",
            _bind_extreme("min"),
            _sql_extreme("min"),
        ),
        _fn(
            "max",
            "max(a, b, ...) -> same type",
            "The largest; null if any is null.",
            _bind_extreme("max"),
            _sql_extreme("max"),
        ),
        # nulls
        _fn(
            "coalesce",
            "coalesce(a, b, ...) -> same type",
            "The first argument that is not null.",
            _bind_coalesce,
            lambda a, t, c: exp.Coalesce(this=a[0], expressions=a[1:]),
        ),
        _fn(
            "is_null",
            "is_null(value) -> bool",
            "Whether the value is null (never null itself).",
            _bind_is_null,
            lambda a, t, c: exp.Is(this=a[0], expression=exp.Null()),
        ),
    ]
}
