"""Type checker: syntax tree + schema -> typed tree, or every problem found.

Each node of the returned tree carries its type and whether it can be null; calls carry
their resolved function. Sub-expressions made only of literals are folded into a literal
(with the interpreter, so folding means exactly what evaluation means), which also keeps
the SQL free of literal-only arithmetic that an engine might overflow differently.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import replace

from overture.rules import nodes as n
from overture.rules.errors import Diagnostic, RuleError
from overture.rules.functions import FUNCTIONS, INT64_MAX, INT64_MIN, ArgumentError, unify
from overture.rules.interpreter import Env, evaluate
from overture.rules.parser import suggest
from overture.rules.types import (
    CONTEXT,
    NAMESPACES,
    OFFER,
    PROFILE,
    SEGMENT,
    TREATMENT,
    Instant,
    Schema,
    Type,
)

BOOL_RESULT = (Type.BOOL,)
NUMBER_RESULT = (Type.INT, Type.FLOAT)

MAX_ARGUMENTS = 64  # a call's arguments: more is a mistake, and no engine needs it
_FOLD_ENV = Env(Instant.at(dt.datetime(2000, 1, 1)))  # never read: impure calls are not folded
_NAMESPACE_LABEL = {
    PROFILE: "profile field",
    CONTEXT: "context field",
    SEGMENT: "segment",
    OFFER: "offer field",
    TREATMENT: "treatment value",
}


def literal_type(value: object) -> Type:
    if value is None:
        return Type.NULL
    if isinstance(value, bool):
        return Type.BOOL
    if isinstance(value, int):
        return Type.INT
    if isinstance(value, float):
        return Type.FLOAT
    if isinstance(value, str):
        return Type.STRING
    if isinstance(value, dt.datetime):
        return Type.DATETIME
    if isinstance(value, dt.date):
        return Type.DATE
    raise TypeError(f"no rule type for {value!r}")


def check(tree: n.Node, schema: Schema, result: tuple[Type, ...] = BOOL_RESULT) -> n.Node:
    """Type-check `tree`; raise RuleError listing every problem if there is any.

    `result` is what the whole expression must be: a condition (eligibility, segments,
    filters) or a number (weights, scores).
    """
    checker = _Checker(schema)
    typed = checker.visit(tree)
    if typed.type is not None and typed.type not in (*result, Type.NULL):
        if result == BOOL_RESULT:
            checker.error(
                tree,
                f"this rule must be a condition (true or false), but it is {typed.type}",
                "compare it, e.g. age >= 18" if typed.type.is_numeric else None,
            )
        else:
            wanted = " or ".join(str(t) for t in result)
            checker.error(tree, f"this expression must be a {wanted}, but it is {typed.type}")
    if checker.diagnostics:
        raise RuleError(sorted(checker.diagnostics, key=lambda d: (d.line, d.column)))
    return typed


class _Checker:
    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.diagnostics: list[Diagnostic] = []

    def error(self, node: n.Node, message: str, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(node.line, node.column, message, hint))

    def visit(self, node: n.Node, in_list: bool = False) -> n.Node:
        """Typed copy of `node`; type None means an error was already reported below it."""
        if isinstance(node, n.ListLit) and not in_list:
            self.error(node, "a list can only follow 'in'", "write: country in ('FR', 'DE')")
            return node
        typed = getattr(self, f"_{type(node).__name__.lower()}")(node)
        return self._fold(typed)

    def _fold(self, node: n.Node) -> n.Node:
        if node.type is None or isinstance(node, (n.Literal, n.Name, n.ListLit)):
            return node
        if isinstance(node, n.Call) and (not FUNCTIONS[node.function].pure):
            return node
        if not all(
            isinstance(c, n.Literal)
            or (isinstance(c, n.ListLit) and all(isinstance(i, n.Literal) for i in c.items))
            for c in n.children(node)
        ):
            return node
        try:
            value = evaluate(node, _FOLD_ENV)
        except (ArithmeticError, ValueError, TypeError) as exc:
            self.error(node, f"cannot evaluate this expression: {exc}")
            return replace(node, type=None)
        if value is None and _out_of_range(node):
            self.error(
                node,
                f"this {node.type} is out of range",
                "integers are 64-bit (up to ±9223372036854775807), floats finite "
                "(up to ±1.8e308), dates in years 1 to 9999",
            )
            return replace(node, type=None)
        return n.Literal(node.line, node.column, node.type, value is None, value=value)  # type: ignore[arg-type]

    # -- leaves --------------------------------------------------------------------
    def _literal(self, node: n.Literal) -> n.Node:
        if type(node.value) is int and not INT64_MIN <= node.value <= INT64_MAX:
            self.error(node, f"integer {node.value} is too large", f"at most {INT64_MAX}")
            return replace(node, type=None)
        return replace(node, type=literal_type(node.value), nullable=node.value is None)

    def _name(self, node: n.Name) -> n.Node:
        if node.namespace == TREATMENT:
            key = f"{TREATMENT}.{node.field}"
            if key in self.schema.constants:
                t, value = self.schema.constants[key]
                return n.Literal(node.line, node.column, t, value is None, value=value)  # type: ignore[arg-type]
            if not self.schema.constants:
                self.error(
                    node, "treatment.* is only available in a treatment rule's score expression"
                )
            else:
                self.error(
                    node,
                    f"unknown treatment value {node.field!r}",
                    "available: " + ", ".join(sorted(self.schema.constants)),
                )
            return replace(node, type=None)
        fields = self.schema.namespace(node.namespace)
        if fields is None:
            what = "segments" if node.namespace == SEGMENT else f"{node.namespace}.* fields"
            self.error(node, f"{what} are not available in this rule")
            return replace(node, type=None)
        field_type = fields.get(node.field)
        if field_type is None:
            self.error(
                node,
                f"unknown {_NAMESPACE_LABEL[node.namespace]} {node.field!r}",
                self._hint_for_unknown(node, fields),
            )
            return replace(node, type=None)
        return replace(node, type=field_type, nullable=node.namespace != SEGMENT)

    def _hint_for_unknown(self, node: n.Name, fields: Mapping[str, Type]) -> str | None:
        hint = suggest(node.field, list(fields))
        if hint:
            return hint
        for other in NAMESPACES:
            if other == node.namespace:
                continue
            ns = self.schema.namespace(other)
            if ns and node.field in ns:
                written = node.field if other == PROFILE else f"{other}.{node.field}"
                return f"it is a {_NAMESPACE_LABEL[other]}: write {written}"
        return None

    # -- operators -----------------------------------------------------------------
    def _unary(self, node: n.Unary) -> n.Node:
        if node.op == "-" and isinstance(node.operand, n.Literal) and node.operand.value == 2**63:
            return n.Literal(node.line, node.column, Type.INT, False, value=INT64_MIN)
        operand = self.visit(_(node.operand))
        if operand.type is None:
            return replace(node, operand=operand, type=None)
        if not operand.type.is_numeric and operand.type != Type.NULL:
            self.error(node, f"'{node.op}' needs a number, not {operand.type}")
            return replace(node, operand=operand, type=None)
        t = Type.FLOAT if operand.type == Type.NULL else operand.type
        # -(-2**63) does not fit in 64 bits: a negated int can be null
        nullable = operand.nullable or (node.op == "-" and t == Type.INT)
        return replace(node, operand=operand, type=t, nullable=nullable)

    def _binary(self, node: n.Binary) -> n.Node:
        left, right = self.visit(_(node.left)), self.visit(_(node.right))
        out = replace(node, left=left, right=right, type=None)
        a, b = left.type, right.type
        if a is None or b is None:
            return out
        nullable = left.nullable or right.nullable
        if node.op == "+" and unify(a, b) == Type.STRING:
            return replace(out, type=Type.STRING, nullable=nullable)
        numeric = (
            unify(a, b)
            if (a.is_numeric or a == Type.NULL) and (b.is_numeric or b == Type.NULL)
            else None
        )
        if numeric is None:
            self.error(node, f"cannot apply '{node.op}' to {a} and {b}", _arith_hint(node.op, a, b))
            return out
        if numeric == Type.NULL:
            numeric = Type.FLOAT
        if node.op == "/":
            return replace(out, type=Type.FLOAT, nullable=True)
        if node.op == "%":
            if numeric != Type.INT:
                self.error(
                    node,
                    f"'%' takes whole numbers, not {a} and {b}",
                    "round(x) or floor(x) first; engines disagree on float remainders",
                )
                return out
            return replace(out, type=numeric, nullable=True)
        # a sum, difference or product past 64 bits or ±1.8e308 is null
        return replace(out, type=numeric, nullable=True)

    def _compare(self, node: n.Compare) -> n.Node:
        left, right = self.visit(_(node.left)), self.visit(_(node.right))
        out = replace(node, left=left, right=right, type=None)
        a, b = left.type, right.type
        if a is None or b is None:
            return out
        if Type.NULL in (a, b):
            self.error(
                node,
                f"'{node.op}' with None is never true (None is unknown, not a value)",
                "test for a missing value with: x is None / x is not None",
            )
            return out
        common = unify(a, b)
        if common is None:
            hint = (
                "convert with date(x) or datetime(x)"
                if {a, b} == {Type.DATE, Type.DATETIME}
                else None
            )
            self.error(node, f"cannot compare {a} with {b}", hint)
            return out
        if common == Type.LIST:
            self.error(node, "lists cannot be compared", "test membership: 'gold' in tags")
            return out
        if common == Type.BOOL and node.op not in ("==", "!="):
            self.error(node, f"'{node.op}' does not apply to true/false values")
            return out
        return replace(out, type=Type.BOOL, nullable=left.nullable or right.nullable)

    def _boolop(self, node: n.BoolOp) -> n.Node:
        operands = tuple(self.visit(o) for o in node.operands)
        ok = True
        for operand in operands:
            if operand.type is None:
                ok = False
            elif operand.type not in (Type.BOOL, Type.NULL):
                self.error(
                    operand,
                    f"'{node.op}' joins conditions, but this is {operand.type}",
                    "compare it, e.g. x > 0 or x is not None",
                )
                ok = False
        return replace(
            node,
            operands=operands,
            type=Type.BOOL if ok else None,
            nullable=any(o.nullable for o in operands),
        )

    def _not(self, node: n.Not) -> n.Node:
        operand = self.visit(_(node.operand))
        if operand.type is None:
            return replace(node, operand=operand, type=None)
        if operand.type not in (Type.BOOL, Type.NULL):
            self.error(node, f"'not' needs a condition, but this is {operand.type}")
            return replace(node, operand=operand, type=None)
        return replace(node, operand=operand, type=Type.BOOL, nullable=operand.nullable)

    def _in(self, node: n.In) -> n.Node:
        needle = self.visit(_(node.needle))
        haystack = self.visit(_(node.haystack), in_list=True)
        out = replace(node, needle=needle, haystack=haystack, type=None)
        if needle.type is None:
            return out
        if needle.type == Type.NULL:
            self.error(node, "'in' with None is never true", "test with: x is None")
            return out
        if isinstance(haystack, n.ListLit):
            if not haystack.items:
                self.error(haystack, "empty list", "list at least one value")
                return out
            ok = True
            for item in haystack.items:
                if item.type is None:
                    ok = False
                elif unify(needle.type, item.type) is None or item.type == Type.LIST:
                    self.error(
                        item, f"list item is {item.type}, but the value tested is {needle.type}"
                    )
                    ok = False
            if not ok:
                return out
            nullable = needle.nullable or any(i.nullable for i in haystack.items)
            return replace(out, type=Type.BOOL, nullable=nullable)
        if haystack.type is None:
            return out
        if haystack.type == Type.LIST:
            if needle.type != Type.STRING:
                self.error(node, f"a list of strings cannot contain {needle.type}")
                return out
            return replace(out, type=Type.BOOL, nullable=True)
        hint = "use contains(text, part)" if haystack.type == Type.STRING else None
        self.error(haystack, f"'in' needs a list after it, not {haystack.type}", hint)
        return out

    def _isnull(self, node: n.IsNull) -> n.Node:
        operand = self.visit(_(node.operand))
        t = None if operand.type is None else Type.BOOL
        return replace(node, operand=operand, type=t, nullable=False)

    def _listlit(self, node: n.ListLit) -> n.Node:
        items = tuple(self.visit(i) for i in node.items)
        return replace(node, items=items, type=Type.LIST, nullable=False)

    def _call(self, node: n.Call) -> n.Node:
        if len(node.args) > MAX_ARGUMENTS:
            self.error(
                node,
                f"{node.function}() has {len(node.args)} arguments, at most {MAX_ARGUMENTS}",
                "split it in parts, e.g. coalesce(coalesce(a, b), c)",
            )
            return replace(node, type=None)
        args = tuple(self.visit(a) for a in node.args)
        out = replace(node, args=args, type=None)
        if any(a.type is None for a in args):
            return out
        try:
            bound = FUNCTIONS[node.function].bind(args)
        except ArgumentError as exc:
            at = args[exc.index] if 0 <= exc.index < len(args) else node
            self.error(at, f"{node.function}(): {exc}", exc.hint)
            return out
        if bound.partial:
            nullable = True
        elif bound.nullable is not None:
            nullable = bound.nullable
        else:
            nullable = any(a.nullable for a in args)
        return replace(out, type=bound.type, nullable=nullable, bound=bound)

    def _ifelse(self, node: n.IfElse) -> n.Node:
        condition = self.visit(_(node.condition))
        then, otherwise = self.visit(_(node.then)), self.visit(_(node.otherwise))
        out = replace(node, condition=condition, then=then, otherwise=otherwise, type=None)
        if condition.type is None or then.type is None or otherwise.type is None:
            return out
        if condition.type not in (Type.BOOL, Type.NULL):
            self.error(
                condition, f"the condition after 'if' must be true or false, not {condition.type}"
            )
            return out
        common = unify(then.type, otherwise.type)
        if common is None:
            self.error(node, f"both branches must have one type: {then.type} and {otherwise.type}")
            return out
        return replace(out, type=common, nullable=then.nullable or otherwise.nullable)


def _(node: n.Node | None) -> n.Node:
    assert node is not None
    return node


def _out_of_range(node: n.Node) -> bool:
    """Whether a folded null is an overflow (not a null operand or a division by zero)."""
    children = n.children(node)
    if any(isinstance(c, n.Literal) and c.value is None for c in children):
        return False
    if isinstance(node, n.Binary) and node.op in ("/", "%"):
        right = node.right
        return node.op == "/" and isinstance(right, n.Literal) and right.value != 0
    if isinstance(node, n.Call):
        return node.bound is not None and node.bound.partial
    return isinstance(node, (n.Binary, n.Unary))


def _arith_hint(op: str, a: Type, b: Type) -> str | None:
    if Type.DATE in (a, b) or Type.DATETIME in (a, b):
        return "use add_days(d, n), days_between(a, b) or days_since(d)"
    if op == "+" and Type.STRING in (a, b):
        return "both sides of '+' must be strings to join them"
    if Type.BOOL in (a, b):
        return "true/false values are not numbers"
    return None
