"""The syntax tree of a rule.

The parser builds these nodes with `type=None`; the checker returns a new tree in which
every node has its type and whether it can be null. Both compilers (Python and SQL) and
the interpreter read only checked trees.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeAlias

from overture.rules.types import Type

if TYPE_CHECKING:
    from overture.rules.functions import Bound

Value: TypeAlias = str | int | float | bool | dt.date | dt.datetime | tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class Node:
    line: int
    column: int
    type: Type | None = None
    nullable: bool = True


@dataclass(frozen=True, slots=True)
class Literal(Node):
    value: Value = None


@dataclass(frozen=True, slots=True)
class Name(Node):
    """A field: `age` (namespace "profile"), `context.device`, `segment.young`, `offer.value`."""

    namespace: str = "profile"
    field: str = ""

    @property
    def dotted(self) -> str:
        return self.field if self.namespace == "profile" else f"{self.namespace}.{self.field}"


@dataclass(frozen=True, slots=True)
class Unary(Node):
    op: str = "-"  # "-" or "+"
    operand: Node | None = None


@dataclass(frozen=True, slots=True)
class Binary(Node):
    """Arithmetic: + - * / %; `+` on strings concatenates."""

    op: str = "+"
    left: Node | None = None
    right: Node | None = None


@dataclass(frozen=True, slots=True)
class Compare(Node):
    op: str = "=="  # == != < <= > >=
    left: Node | None = None
    right: Node | None = None


@dataclass(frozen=True, slots=True)
class BoolOp(Node):
    op: str = "and"  # "and" or "or"
    operands: tuple[Node, ...] = ()


@dataclass(frozen=True, slots=True)
class Not(Node):
    operand: Node | None = None


@dataclass(frozen=True, slots=True)
class ListLit(Node):
    """A list or tuple literal; only meaningful on the right of `in`."""

    items: tuple[Node, ...] = ()


@dataclass(frozen=True, slots=True)
class In(Node):
    """`needle in haystack` (haystack: a list literal or a list field); negated for `not in`."""

    needle: Node | None = None
    haystack: Node | None = None
    negated: bool = False


@dataclass(frozen=True, slots=True)
class IsNull(Node):
    """`x is None` / `x is not None`."""

    operand: Node | None = None
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Call(Node):
    function: str = ""
    args: tuple[Node, ...] = ()
    # Set by the checker: the function resolved against the argument types.
    bound: Bound | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class IfElse(Node):
    """`then if condition else otherwise`; a null condition takes the else branch (as SQL CASE)."""

    condition: Node | None = None
    then: Node | None = None
    otherwise: Node | None = None


def children(node: Node) -> tuple[Node, ...]:
    """The direct sub-expressions of a node, in source order."""
    match node:
        case Unary(operand=o) | Not(operand=o) | IsNull(operand=o):
            return (o,) if o is not None else ()
        case Binary(left=a, right=b) | Compare(left=a, right=b):
            return tuple(x for x in (a, b) if x is not None)
        case BoolOp(operands=ops):
            return ops
        case ListLit(items=items):
            return items
        case In(needle=a, haystack=b):
            return tuple(x for x in (a, b) if x is not None)
        case Call(args=args):
            return args
        case IfElse(condition=c, then=t, otherwise=o):
            return tuple(x for x in (t, c, o) if x is not None)
    return ()


def walk(node: Node) -> list[Node]:
    """The node and all its descendants, depth first."""
    out = [node]
    for child in children(node):
        out.extend(walk(child))
    return out
