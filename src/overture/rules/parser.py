"""Recursive-descent parser: rule text -> syntax tree (untyped).

Precedence, lowest first, as in Python:
    x if c else y  <  or  <  and  <  not  <  comparisons, in, is  <  + -  <  * / %  <  unary -
Comparison chains (`18 <= age < 65`) mean what they mean in Python: each pair, joined by `and`.

Everything that would reach Python's object model is refused here, with its position:
attribute access other than the `context.`, `segment.`, `offer.` and `profile.` namespaces,
calls of anything but the function library, indexing, lambdas, comprehensions, imports.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from overture.rules import nodes as n
from overture.rules.errors import RuleError
from overture.rules.functions import FUNCTIONS
from overture.rules.lexer import Token, tokenize
from overture.rules.types import NAMESPACES

MAX_DEPTH = 32

_COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
_TRUE, _FALSE, _NONE = ("True", "true"), ("False", "false"), ("None", "null")
_UPPER_KEYWORDS = {"AND": "and", "OR": "or", "NOT": "not", "IN": "in", "IS": "is", "NULL": "None"}


def parse(source: str) -> n.Node:
    """Parse a rule; raise RuleError (with line and column) if it is not well formed."""
    tree = _Parser(tokenize(source)).parse()
    depth = _depth(tree)
    if depth > MAX_DEPTH:
        raise RuleError.at(
            tree.line,
            tree.column,
            f"rule is nested too deeply ({depth} levels, at most {MAX_DEPTH})",
            "split it into segments and refer to them as segment.<name>",
        )
    return tree


def _depth(tree: n.Node) -> int:
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((child, d + 1) for child in n.children(node))
    return deepest


def suggest(word: str, choices: list[str] | tuple[str, ...] | set[str]) -> str | None:
    """`did you mean 'x'?` for the closest of `choices`, if one is close enough."""
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    # -- token helpers -------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def at(self, kind: str, *texts: str) -> bool:
        tok = self.tokens[self.i]
        return tok.kind == kind and (not texts or tok.text in texts)

    def at_kw(self, *words: str) -> bool:
        return self.at("kw", *words)

    def at_op(self, *ops: str) -> bool:
        return self.at("op", *ops)

    def error(self, tok: Token, message: str, hint: str | None = None) -> RuleError:
        return RuleError.at(tok.line, tok.column, message, hint)

    def unexpected(self, tok: Token, hint: str | None = None) -> RuleError:
        if tok.kind == "eof":
            return self.error(tok, "unexpected end of rule", hint or "the rule is incomplete")
        if tok.kind == "name" and tok.text in _UPPER_KEYWORDS:
            hint = f"keywords are lowercase: use {_UPPER_KEYWORDS[tok.text]!r}"
        return self.error(tok, f"unexpected {tok.text!r}", hint)

    def expect_op(self, op: str, hint: str | None = None) -> Token:
        if not self.at_op(op):
            raise self.unexpected(self.tok, hint or f"expected {op!r}")
        return self.next()

    def enter(self, tok: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(tok, f"rule is nested too deeply (at most {MAX_DEPTH} levels)")

    # -- grammar -------------------------------------------------------------------
    def parse(self) -> n.Node:
        if self.at("eof"):
            raise self.error(self.tok, "empty rule", "write a condition such as: age >= 18")
        node = self.expression()
        if not self.at("eof"):
            raise self.unexpected(self.tok, "combine conditions with 'and' or 'or'")
        return node

    def expression(self) -> n.Node:
        start = self.tok
        self.enter(start)
        node = self.disjunction()
        if self.at_kw("if"):
            self.next()
            condition = self.disjunction()
            if not self.at_kw("else"):
                raise self.unexpected(self.tok, "a conditional needs an else: a if cond else b")
            self.next()
            otherwise = self.expression()
            node = n.IfElse(
                start.line, start.column, condition=condition, then=node, otherwise=otherwise
            )
        self.depth -= 1
        return node

    def disjunction(self) -> n.Node:
        return self._bool_chain("or", self.conjunction)

    def conjunction(self) -> n.Node:
        return self._bool_chain("and", self.negation)

    def _bool_chain(self, op: str, parse_operand: Callable[[], n.Node]) -> n.Node:
        first = self.tok
        operands = [parse_operand()]
        while self.at_kw(op):
            self.next()
            operands.append(parse_operand())
        if len(operands) == 1:
            return operands[0]
        return n.BoolOp(first.line, first.column, op=op, operands=tuple(operands))

    def negation(self) -> n.Node:
        if self.at_kw("not"):
            tok = self.next()
            self.enter(tok)
            operand = self.negation()
            self.depth -= 1
            return n.Not(tok.line, tok.column, operand=operand)
        return self.comparison()

    def comparison(self) -> n.Node:
        first = self.tok
        left = self.additive()
        pairs: list[n.Node] = []
        special = False
        while True:
            tok = self.tok
            if self.at_op(*_COMPARISONS):
                op = self.next().text
                right = self.additive()
                pairs.append(n.Compare(tok.line, tok.column, op=op, left=left, right=right))
                left = right
            elif self.at_kw("in") or (self.at_kw("not") and self._peek_kw("in")):
                negated = self.next().text == "not"
                if negated:
                    self.next()
                right = self.additive()
                pairs.append(
                    n.In(tok.line, tok.column, needle=left, haystack=right, negated=negated)
                )
                special = True
                left = right
            elif self.at_kw("is"):
                self.next()
                negated = self.at_kw("not")
                if negated:
                    self.next()
                if not self.at_kw(*_NONE):
                    raise self.unexpected(
                        self.tok,
                        "'is' only tests for None: write `x is None` or `x is not None`; "
                        "compare values with '=='",
                    )
                self.next()
                pairs.append(n.IsNull(tok.line, tok.column, operand=left, negated=negated))
                special = True
            else:
                break
        if not pairs:
            return left
        if len(pairs) == 1:
            return pairs[0]
        if special:
            raise self.error(
                first,
                "'in' and 'is' cannot be chained with other comparisons",
                "put each comparison in parentheses and join them with 'and'",
            )
        return n.BoolOp(first.line, first.column, op="and", operands=tuple(pairs))

    def _peek_kw(self, word: str) -> bool:
        nxt = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else self.tok
        return nxt.kind == "kw" and nxt.text == word

    def additive(self) -> n.Node:
        left = self.term()
        while self.at_op("+", "-"):
            tok = self.next()
            right = self.term()
            left = n.Binary(tok.line, tok.column, op=tok.text, left=left, right=right)
        return left

    def term(self) -> n.Node:
        left = self.unary()
        while self.at_op("*", "/", "%"):
            tok = self.next()
            right = self.unary()
            left = n.Binary(tok.line, tok.column, op=tok.text, left=left, right=right)
        return left

    def unary(self) -> n.Node:
        if self.at_op("-", "+"):
            tok = self.next()
            if tok.text == "-" and self.at("num") and not self._followed_by_postfix():
                num = self.next()
                return n.Literal(tok.line, tok.column, value=-num.value)  # type: ignore[operator]
            self.enter(tok)
            operand = self.unary()
            self.depth -= 1
            return n.Unary(tok.line, tok.column, op=tok.text, operand=operand)
        return self.postfix(self.primary())

    def _followed_by_postfix(self) -> bool:
        nxt = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else self.tok
        return nxt.kind == "op" and nxt.text in ("(", "[", ".")

    def postfix(self, node: n.Node) -> n.Node:
        tok = self.tok
        if self.at_op("["):
            raise self.error(
                tok,
                "indexing is not supported",
                "test membership with 'in' instead: 'gold' in tags",
            )
        if self.at_op("("):
            raise self.error(
                tok,
                "only library functions can be called",
                "see the list of functions in docs/rules.md",
            )
        if self.at_op("."):
            raise self.error(
                tok,
                "attribute access is not allowed",
                "only context.<field>, segment.<name>, offer.<field> have a dot",
            )
        return node

    def primary(self) -> n.Node:
        tok = self.tok
        if tok.kind in {"num", "str"}:
            self.next()
            return n.Literal(tok.line, tok.column, value=tok.value)  # type: ignore[arg-type]
        if tok.kind == "kw":
            if tok.text in _TRUE or tok.text in _FALSE or tok.text in _NONE:
                self.next()
                value = True if tok.text in _TRUE else False if tok.text in _FALSE else None
                return n.Literal(tok.line, tok.column, value=value)
            raise self.unexpected(tok)
        if tok.kind == "name":
            return self.name_or_call()
        if self.at_op("("):
            return self.parenthesized()
        if self.at_op("["):
            return self.list_literal()
        raise self.unexpected(tok)

    def name_or_call(self) -> n.Node:
        tok = self.next()
        word = tok.text
        if self.at_op("("):
            if word not in FUNCTIONS:
                raise self.error(
                    tok,
                    f"unknown function {word!r}",
                    suggest(word, list(FUNCTIONS)) or "see docs/rules.md for the library",
                )
            self.next()
            args = self.arguments(")")
            return n.Call(tok.line, tok.column, function=word, args=args)
        if self.at_op("."):
            if word not in NAMESPACES:
                hint = suggest(word, NAMESPACES)
                raise self.error(
                    self.tok,
                    f"attribute access is not allowed: {word!r} has no fields",
                    f"{hint} "
                    if hint
                    else "only context.<field>, segment.<name>, offer.<field> "
                    "and profile.<field> have a dot",
                )
            self.next()
            if not self.at("name"):
                raise self.unexpected(self.tok, f"expected a field name after '{word}.'")
            field = self.next()
            return n.Name(tok.line, tok.column, namespace=word, field=field.text)
        if word in NAMESPACES and word != "profile":
            raise self.error(tok, f"{word!r} is a namespace", f"write {word}.<field>")
        return n.Name(tok.line, tok.column, namespace="profile", field=word)

    def arguments(self, closing: str) -> tuple[n.Node, ...]:
        args: list[n.Node] = []
        while not self.at_op(closing):
            if args:
                self.expect_op(",", f"separate items with ',' or close with {closing!r}")
                if self.at_op(closing):  # trailing comma
                    break
            args.append(self.expression())
        self.next()
        return tuple(args)

    def parenthesized(self) -> n.Node:
        open_tok = self.next()
        if self.at_op(")"):
            raise self.error(open_tok, "empty parentheses", "write a list with items: ('a', 'b')")
        first = self.expression()
        if self.at_op(")"):
            self.next()
            return first
        if not self.at_op(","):
            raise self.unexpected(self.tok, "expected ')'")
        self.next()
        items = (first, *self.arguments(")"))
        return n.ListLit(open_tok.line, open_tok.column, items=items)

    def list_literal(self) -> n.Node:
        open_tok = self.next()
        items = self.arguments("]")
        return n.ListLit(open_tok.line, open_tok.column, items=items)
