"""The rule language: parse, type-check, compile to Python (real time) and SQL (batch).

    >>> from overture.rules import Schema, Type, compile_rule
    >>> rule = compile_rule("age >= 18 and country in ('FR', 'DE')",
    ...                     Schema(profile={"age": Type.INT, "country": Type.STRING}))
    >>> rule.test({"age": 30, "country": "FR"})
    True
    >>> rule.sql("postgres")
    '("age" >= 18 AND ("country" IN (\\'FR\\', \\'DE\\')))'

See docs/rules.md for the language itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from overture.rules.checker import BOOL_RESULT, NUMBER_RESULT, check
from overture.rules.errors import Diagnostic, RuleError
from overture.rules.functions import FUNCTIONS
from overture.rules.interpreter import Env, evaluate
from overture.rules.nodes import Node
from overture.rules.parser import parse
from overture.rules.pycompile import Evaluator, Predicate, compile_predicate, compile_value
from overture.rules.sqlcompile import (
    DIALECTS,
    POSTGRES_PRELUDE,
    NameResolver,
    default_names,
    to_sql,
    to_sqlglot,
)
from overture.rules.types import Instant, Schema, Type, parse_type

__all__ = [
    "BOOL_RESULT",
    "DIALECTS",
    "FUNCTIONS",
    "NUMBER_RESULT",
    "POSTGRES_PRELUDE",
    "CompiledRule",
    "Diagnostic",
    "Env",
    "Evaluator",
    "Instant",
    "NameResolver",
    "Node",
    "Predicate",
    "RuleError",
    "Schema",
    "Type",
    "check",
    "compile_predicate",
    "compile_rule",
    "compile_value",
    "default_names",
    "evaluate",
    "parse",
    "parse_type",
    "to_sql",
    "to_sqlglot",
]

_EMPTY: Mapping[str, Any] = {}


@dataclass(frozen=True)
class CompiledRule:
    """A checked rule with its compiled forms, for callers that want one object."""

    source: str
    tree: Node
    predicate: Predicate | None = field(repr=False)  # conditions
    evaluator: Evaluator = field(repr=False)

    @property
    def type(self) -> Type:
        assert self.tree.type is not None
        return self.tree.type

    def test(
        self,
        profile: Mapping[str, Any],
        context: Mapping[str, Any] = _EMPTY,
        segments: Mapping[str, Any] = _EMPTY,
        offer: Mapping[str, Any] = _EMPTY,
        now: dt.datetime | None = None,
    ) -> bool:
        """Whether the condition is TRUE for these values (null counts as not true)."""
        if self.predicate is None:
            raise TypeError(f"{self.source!r} is a {self.type} expression, not a condition")
        instant = Instant.at(now or dt.datetime.now(dt.UTC))
        return self.predicate(profile, context, segments, offer, instant)

    def value(
        self,
        profile: Mapping[str, Any],
        context: Mapping[str, Any] = _EMPTY,
        segments: Mapping[str, Any] = _EMPTY,
        offer: Mapping[str, Any] = _EMPTY,
        now: dt.datetime | None = None,
    ) -> Any:
        instant = Instant.at(now or dt.datetime.now(dt.UTC))
        return self.evaluator(profile, context, segments, offer, instant)

    def sql(
        self,
        dialect: str = "duckdb",
        *,
        names: NameResolver = default_names,
        now: dt.datetime | None = None,
    ) -> str:
        return to_sql(self.tree, dialect, names=names, now=now)


def compile_rule(
    source: str, schema: Schema, result: tuple[Type, ...] = BOOL_RESULT
) -> CompiledRule:
    """Parse, check and compile `source`; RuleError (every problem, with positions) if invalid."""
    tree = check(parse(source), schema, result)
    predicate = compile_predicate(tree) if tree.type in (Type.BOOL, Type.NULL) else None
    return CompiledRule(source, tree, predicate, compile_value(tree))
