"""A tree-walking evaluator of checked rules.

It is the executable definition of the language's semantics (three-valued logic, nulls,
SQL-style division and remainder), used to fold constants at check time, as the reference
the property tests compare both compilers against, and as the baseline of the engine
benchmark. Real-time decisions use the compiled closures of `pycompile`, not this.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from overture.rules import nodes as n
from overture.rules.functions import arithmetic, int64
from overture.rules.types import Instant, Type

COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class Env:
    """The values a rule reads, by namespace."""

    instant: Instant
    profile: Mapping[str, object] = field(default_factory=dict)
    context: Mapping[str, object] = field(default_factory=dict)
    segment: Mapping[str, object] = field(default_factory=dict)
    offer: Mapping[str, object] = field(default_factory=dict)


def evaluate(node: n.Node, env: Env) -> object:
    """The value of a checked expression: a Python value, or None for SQL's NULL."""
    value = _evaluate(node, env)
    if node.type == Type.FLOAT and type(value) is int:
        return float(value)  # an int where a float is expected (coalesce, if/else) is one
    return value


def _evaluate(node: n.Node, env: Env) -> object:
    match node:
        case n.Literal(value=literal):
            return literal
        case n.Name(namespace=ns, field=f):
            return _namespace(env, ns).get(f)
        case n.Unary(op=op, operand=a):
            v = evaluate(_(a), env)
            if v is None or op != "-":
                return v
            return int64(-v) if node.type == Type.INT else -v  # type: ignore[operator]
        case n.Binary(op=op, left=a, right=b):
            x, y = evaluate(_(a), env), evaluate(_(b), env)
            if x is None or y is None:
                return None
            if node.type == Type.STRING:
                return x + y  # type: ignore[operator]
            return arithmetic(op, x, y, node.type)
        case n.Compare(op=op, left=a, right=b):
            x, y = evaluate(_(a), env), evaluate(_(b), env)
            if x is None or y is None:
                return None
            if {_(a).type, _(b).type} == {Type.INT, Type.FLOAT}:
                x, y = float(x), float(y)  # type: ignore[arg-type]  # as SQL compares them
            return COMPARE[op](x, y)
        case n.BoolOp(op="and", operands=ops):
            result: object = True
            for operand in ops:
                v = evaluate(operand, env)
                if v is False:
                    return False
                if v is None:
                    result = None
            return result
        case n.BoolOp(operands=ops):
            result = False
            for operand in ops:
                v = evaluate(operand, env)
                if v is True:
                    return True
                if v is None:
                    result = None
            return result
        case n.Not(operand=a):
            v = evaluate(_(a), env)
            return None if v is None else not v
        case n.In(needle=a, haystack=h, negated=neg):
            v = _membership(evaluate(_(a), env), _(h), env)
            return None if v is None else v != neg
        case n.IsNull(operand=a, negated=neg):
            return (evaluate(_(a), env) is None) != neg
        case n.Call():
            return _call(node, env)
        case n.IfElse(condition=c, then=t, otherwise=o):
            return evaluate(_(t), env) if evaluate(_(c), env) is True else evaluate(_(o), env)
    raise TypeError(f"cannot evaluate {type(node).__name__}")


def _(node: n.Node | None) -> n.Node:
    assert node is not None
    return node


def _namespace(env: Env, name: str) -> Mapping[str, object]:
    ns: Mapping[str, object] = getattr(env, name)
    return ns


def _membership(needle: object, haystack: n.Node, env: Env) -> bool | None:
    if needle is None:
        return None
    if isinstance(haystack, n.ListLit):
        values = [evaluate(item, env) for item in haystack.items]
        if Type.FLOAT in {i.type for i in haystack.items} and type(needle) is int:
            needle = float(needle)  # numbers mixed with floats compare as floats, as in SQL
        values = [float(v) if type(v) is int and isinstance(needle, float) else v for v in values]
        if any(v is not None and v == needle for v in values):
            return True
        return None if any(v is None for v in values) else False
    items = evaluate(haystack, env)
    if items is None:
        return None
    return needle in items  # type: ignore[operator]


def _call(node: n.Call, env: Env) -> object:
    if node.function == "coalesce":
        for arg in node.args:
            v = evaluate(arg, env)
            if v is not None:
                return v
        return None
    if node.function == "is_null":
        return evaluate(node.args[0], env) is None
    bound = node.bound
    assert bound is not None and bound.py is not None, "evaluate() needs a checked tree"
    args = [evaluate(arg, env) for arg in node.args]
    if any(a is None for a in args):
        return None
    return bound.py(env.instant, *args) if bound.needs_instant else bound.py(*args)
