"""The parser accepts the documented syntax and rejects the rest with a position."""

from __future__ import annotations

import pytest

from overture.rules import RuleError, parse
from overture.rules import nodes as n


def test_precedence_follows_python() -> None:
    tree = parse("a or b and not c")
    assert isinstance(tree, n.BoolOp) and tree.op == "or"
    right = tree.operands[1]
    assert isinstance(right, n.BoolOp) and right.op == "and"
    assert isinstance(right.operands[1], n.Not)


def test_arithmetic_binds_tighter_than_comparison() -> None:
    tree = parse("a + b * 2 > 3")
    assert isinstance(tree, n.Compare)
    assert isinstance(tree.left, n.Binary) and tree.left.op == "+"
    assert isinstance(tree.left.right, n.Binary) and tree.left.right.op == "*"


def test_comparison_chain_becomes_and() -> None:
    tree = parse("18 <= age < 65")
    assert isinstance(tree, n.BoolOp) and tree.op == "and"
    assert [c.op for c in tree.operands if isinstance(c, n.Compare)] == ["<=", "<"]


def test_namespaces_and_membership() -> None:
    tree = parse("context.device in ('a', 'b') and segment.young and 'x' not in tags")
    assert isinstance(tree, n.BoolOp)
    first, second, third = tree.operands
    assert isinstance(first, n.In) and isinstance(first.needle, n.Name)
    assert first.needle.namespace == "context" and first.needle.field == "device"
    assert isinstance(second, n.Name) and second.namespace == "segment"
    assert isinstance(third, n.In) and third.negated


def test_conditional_expression_and_literals() -> None:
    tree = parse("1.5 if x is not None else -2")
    assert isinstance(tree, n.IfElse)
    assert isinstance(tree.condition, n.IsNull) and tree.condition.negated
    assert isinstance(tree.otherwise, n.Literal) and tree.otherwise.value == -2


def test_positions_are_one_based_and_span_lines() -> None:
    tree = parse("a and\n  b")
    assert isinstance(tree, n.BoolOp)
    assert (tree.operands[1].line, tree.operands[1].column) == (2, 3)


def test_comments_and_escapes() -> None:
    tree = parse("name == 'it\\'s'  # the apostrophe is escaped")
    assert isinstance(tree, n.Compare) and isinstance(tree.right, n.Literal)
    assert tree.right.value == "it's"


@pytest.mark.parametrize(
    ("source", "where", "fragment"),
    [
        ("x.__class__", (1, 3), "'_'"),
        ("x.y", (1, 2), "attribute access is not allowed"),
        ("context.device.upper", (1, 15), "attribute access is not allowed"),
        ("lambda x: x", (1, 1), "'lambda' is not allowed"),
        ("[x for x in tags]", (1, 4), "'for' is not allowed"),
        ("import os", (1, 1), "'import' is not allowed"),
        ("__import__('os')", (1, 1), "'_'"),
        ("eval('1 + 1')", (1, 1), "unknown function 'eval'"),
        ("getattr(age, 'real')", (1, 1), "unknown function 'getattr'"),
        ("tags[0] == 'a'", (1, 5), "indexing is not supported"),
        ("(age)(1)", (1, 6), "only library functions can be called"),
        ("age = 3", (1, 5), "'='"),
        ("age ** 2 > 3", (1, 5), "'**'"),
        ("{'a': 1}", (1, 1), "'{'"),
        ("f'x' == y", (1, 1), "string prefix"),
        ("age > 18 AND x", (1, 10), "lowercase"),
        ("age is 3", (1, 8), "'is' only tests for None"),
        ("", (1, 1), "empty rule"),
        ("age >", (1, 6), "unexpected end of rule"),
        ("(age > 3", (1, 9), "unexpected end of rule"),
        ("'unterminated", (1, 1), "unterminated string"),
        ("a if b", (1, 7), "needs an else"),
        ("age < b in c", (1, 1), "cannot be chained"),
        ("007 == x", (1, 1), "leading zeros"),
        ("x == 'a\\q'", (1, 8), "unknown escape"),
        ("café == 1", (1, 4), "names are ASCII"),
    ],
)
def test_rejections_say_where_and_why(source: str, where: tuple[int, int], fragment: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse(source)
    assert (caught.value.line, caught.value.column) == where
    assert fragment in str(caught.value)


def test_nesting_is_bounded() -> None:
    with pytest.raises(RuleError, match="nested too deeply"):
        parse("(" * 200 + "a" + ")" * 200)
    with pytest.raises(RuleError, match="nested too deeply"):
        parse("not " * 100 + "a")
    with pytest.raises(RuleError, match="nested too deeply"):
        parse(" + ".join(["a"] * 100) + " > 1")


def test_length_is_bounded() -> None:
    with pytest.raises(RuleError, match="limit"):
        parse("a or " * 5000 + "a")
