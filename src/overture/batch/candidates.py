"""Steps 1, 2 and 4 of the decision pipeline as one SQL query: who may get which offer on a
placement, and with what score.

For a target population (a table or a query with one row per recipient) the query returns
a row (recipient, offer, score, tie-break order, ...) for every candidate offer of the
placement that the recipient is eligible for and that has a positive score, and one for
every fallback offer the recipient is eligible for, exactly as the
real-time engine (`overture.engine.pipeline`) would compute it for that profile at the
same instant with the same context:

- candidates: the placement's offers for the audience, active at the run's instant
  (windows are known when the SQL is built, so inactive offers are left out of it);
- eligibility: every ancestor category's rule, then the offer's own, each true (a rule
  that is null - a missing field - is not true, as in the engine);
- segments: each segment's rule is a column of the population, computed once;
- score: the highest applicable weight (weights whose period covers the instant, whose
  rule holds) × the treatment score (the highest of the treatment rules that target the
  offer here and whose segment holds; the plan's default score when the offer is not
  targeted) × the multipliers active at the instant, multiplied in the engine's order.

Offer fields (`offer.*`) and the run's context are folded into the SQL as literals: they
are the same for every recipient. The rules are compiled by `overture.rules.sqlcompile`,
which the rule property tests hold to the Python compiler's meaning, nulls included.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from overture.catalog.scopes import Scopes
from overture.engine.compiled import Candidate, CompiledRule, CompiledTreatment, Window
from overture.engine.plan import DecisionPlan
from overture.rules import NUMBER_RESULT, Schema, Type, check, parse, to_sqlglot
from overture.rules import nodes as n
from overture.rules.sqlcompile import literal

RECIPIENT = "recipient"  # the output's column naming the recipient (the audience's id)


@dataclass(frozen=True)
class CandidateQuery:
    """The SQL of the candidates of one placement, and what it assumed."""

    sql: str
    placement: str
    audience: str
    offers: tuple[str, ...]  # the offers the SQL considers (active candidates)
    dialect: str
    recipients: str = ""  # the population with a column per segment (segment_column)


def segment_column(name: str) -> str:
    return f"segment__{name}"


class _Rules:
    """Rule sources checked against their schema once, turned into SQL per offer."""

    def __init__(self, scopes: Scopes, audience: str, now: dt.datetime, dialect: str) -> None:
        self.scopes = scopes
        self.audience = audience
        self.now = now
        self.dialect = dialect
        self.schema = scopes.rule_schema(audience)
        self._trees: dict[tuple[str, int, bool], n.Node] = {}
        self._schemas: dict[float | None, Schema] = {None: self.schema}

    def tree(
        self, rule: CompiledRule, *, value: bool = False, score: float | None = None
    ) -> n.Node:
        schema = self._schemas.get(score)
        if schema is None:
            schema = self._schemas[score] = self.scopes.rule_schema(self.audience, score=score)
        key = (rule.source, id(schema), value)
        if key not in self._trees:
            self._trees[key] = check(
                parse(rule.source), schema, NUMBER_RESULT if value else (Type.BOOL,)
            )
        return self._trees[key]

    def sql(
        self,
        rule: CompiledRule,
        names: _Names,
        *,
        value: bool = False,
        score: float | None = None,
    ) -> exp.Expr:
        return to_sqlglot(
            self.tree(rule, value=value, score=score),
            dialect=self.dialect,
            names=names,
            now=self.now,
        )

    def holds(self, rule: CompiledRule, names: _Names) -> exp.Expr:
        """True only when the rule is true (null and false are not)."""
        return exp.func("COALESCE", self.sql(rule, names), exp.false())


class _Names:
    """Where a rule's names live: profile fields and segments are the population's
    columns; offer fields and the context are literals."""

    def __init__(
        self,
        offer: Mapping[str, Any],
        offer_types: Mapping[str, Type],
        context: Mapping[str, Any],
        context_types: Mapping[str, Type],
    ) -> None:
        self.offer = offer
        self.offer_types = offer_types
        self.context = context
        self.context_types = context_types

    def __call__(self, namespace: str, field: str) -> exp.Expr:
        if namespace == "profile":
            return exp.column(field, quoted=True)
        if namespace == "segment":
            return exp.column(segment_column(field), quoted=True)
        if namespace == "offer":
            return literal(self.offer.get(field), self.offer_types.get(field))
        if namespace == "context":
            return literal(self.context.get(field), self.context_types.get(field))
        raise ValueError(f"no column for {namespace}.{field}")


def candidates_query(
    plan: DecisionPlan,
    placement: str,
    population: str,
    *,
    now: dt.datetime,
    audience: str | None = None,
    context: Mapping[str, Any] | None = None,
    dialect: str = "duckdb",
) -> CandidateQuery:
    """The query over `population` (a table name, or a parenthesised query whose columns
    are the audience's fields) of its candidate rows:

    (recipient, offer, score, ord, fallback, allowed): `fallback` false for the
    placement's ranked candidates (eligible, score > 0; `ord` breaks ties), true for its
    fallback offers (eligible; `ord` is the fill order, score 0); `allowed` whether the
    placement's filter policies let the offer through for that recipient."""
    audience = audience or plan.default_audience
    info = plan.audiences[audience]
    compiled = plan.placements[placement]
    scopes = Scopes(plan.catalog)
    rules = _Rules(scopes, audience, now, dialect)
    context = dict(context or {})
    context_types = dict(plan.catalog.context)
    offer_types = scopes.offer_fields

    plain = _Names({}, offer_types, context, context_types)
    segments = [
        exp.alias_(rules.holds(rule, plain), segment_column(name), quoted=True)
        for name, rule in info.segments.items()
    ]
    recipients = exp.select(exp.Star(), *segments).from_(
        exp.to_table(population) if population.isidentifier() else f"{population} AS p"
    )
    branches: list[exp.Select] = []
    offers: list[str] = []

    def branch(cand: Candidate, score: exp.Expr, ord_: int, fallback: bool) -> exp.Select:
        names = _Names(cand.offer.namespace, offer_types, context, context_types)
        conditions = [rules.holds(rule, names) for _cat, rule in cand.offer.category_rules]
        if cand.offer.eligibility is not None:
            conditions.append(rules.holds(cand.offer.eligibility, names))
        filters = [
            rules.holds(policy.rule, names)
            for policy, _key in cand.policies
            if policy.kind == "filter" and policy.rule is not None
        ]
        select = exp.select(
            exp.alias_(exp.column(info.id_field, quoted=True), RECIPIENT),
            exp.alias_(exp.Literal.string(cand.offer.code), "offer"),
            exp.alias_(score, "score"),
            exp.alias_(exp.Literal.number(ord_), "ord"),
            exp.alias_(exp.Boolean(this=fallback), "fallback"),
            exp.alias_(exp.and_(*filters) if filters else exp.true(), "allowed"),
        ).from_("recipients")
        return select.where(exp.and_(*conditions)) if conditions else select

    for cand in compiled.candidates.get(audience, ()):
        if not _active(cand.offer.window, now):
            continue
        names = _Names(cand.offer.namespace, offer_types, context, context_types)
        score = _score(plan, rules, cand, names, now)
        if score is None:
            continue  # no weight applies at this instant: nobody gets it
        branches.append(branch(cand, score, cand.order, fallback=False))
        offers.append(cand.offer.code)
    for position, cand in enumerate(compiled.fallbacks.get(audience, ())):
        if _active(cand.offer.window, now):  # fill order; targeting and score do not apply
            branches.append(branch(cand, literal(0.0), position, fallback=True))
    if branches:
        union: exp.Expr = branches[0]
        for other in branches[1:]:
            union = exp.union(union, other, distinct=False, copy=False)
        body = (
            exp.select("*")
            .from_(exp.Subquery(this=union, alias="c"))
            .where("fallback OR score > 0")
        )
    else:  # no candidate: an empty result of the same shape
        body = (
            exp.select(
                exp.alias_(exp.column(info.id_field, quoted=True), RECIPIENT),
                exp.alias_(exp.cast(exp.Null(), "VARCHAR"), "offer"),
                exp.alias_(exp.cast(exp.Null(), "DOUBLE"), "score"),
                exp.alias_(exp.cast(exp.Null(), "INT"), "ord"),
                exp.alias_(exp.false(), "fallback"),
                exp.alias_(exp.true(), "allowed"),
            )
            .from_("recipients")
            .where(exp.false())
        )
    query = body.with_("recipients", as_=recipients)
    return CandidateQuery(
        query.sql(dialect=dialect),
        placement,
        audience,
        tuple(offers),
        dialect,
        recipients.sql(dialect=dialect),
    )


def _active(window: Window, now: dt.datetime) -> bool:
    start, end = window
    return (start is None or now >= start) and (end is None or now < end)


def _greatest(values: list[exp.Expr]) -> exp.Expr | None:
    """The highest non-null value, or null (GREATEST skips nulls on every engine we use)."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return exp.func("GREATEST", *values)


def _double(e: exp.Expr) -> exp.Expr:
    return exp.cast(e, "DOUBLE")


def _score(
    plan: DecisionPlan, rules: _Rules, cand: Candidate, names: _Names, now: dt.datetime
) -> exp.Expr | None:
    """The engine's `_score` as SQL: null (or <= 0) when the offer cannot be scored;
    None when no weight can ever apply at this instant."""
    weight: exp.Expr
    if cand.static_weight is not None:
        weight = literal(float(cand.static_weight), Type.FLOAT)
    else:
        options = []
        for w in cand.weights:
            if not _active(w.window, now):
                continue
            if w.expression is not None:
                value = _double(rules.sql(w.expression, names, value=True))
            elif w.static is not None:
                value = literal(float(w.static), Type.FLOAT)
            else:
                continue
            if w.rule is not None:
                value = exp.Case(ifs=[exp.If(this=rules.holds(w.rule, names), true=value)])
            options.append(value)
        best = _greatest(options)
        if best is None:
            return None
        weight = best
    if cand.offer.targeted:
        treatment = _treatment(plan, rules, cand, names)
        if treatment is None:
            return None
    else:
        treatment = literal(float(plan.default_score), Type.FLOAT)
    score: exp.Expr = exp.Mul(this=exp.Paren(this=weight), expression=exp.Paren(this=treatment))
    for factor, window in cand.offer.multipliers:
        if _active(window, now):
            score = exp.Mul(
                this=exp.Paren(this=score), expression=literal(float(factor), Type.FLOAT)
            )
    # the engine drops a weight <= 0 before multiplying (0 × a negative treatment is 0)
    return exp.Case(
        ifs=[exp.If(this=exp.GT(this=exp.Paren(this=weight), expression=literal(0.0)), true=score)]
    )


def _treatment(
    plan: DecisionPlan, rules: _Rules, cand: Candidate, names: _Names
) -> exp.Expr | None:
    """The highest score among the treatment rules that target the offer here and whose
    segment holds (Interact's rule), or None when none can."""
    options: list[exp.Expr] = []
    if cand.treatment_group >= 0:
        ifs = [
            exp.If(
                this=exp.column(segment_column(segment), quoted=True),
                true=literal(float(score), Type.FLOAT),
            )
            for segment, score in plan.treatment_groups[cand.treatment_group]  # best first
        ]
        if ifs:
            options.append(exp.Case(ifs=ifs))
    for t in cand.conditional_treatments:
        options.append(_conditional(rules, t, names))
    return _greatest(options)


def _conditional(rules: _Rules, t: CompiledTreatment, names: _Names) -> exp.Expr:
    condition: exp.Expr = exp.column(segment_column(t.segment), quoted=True)
    if t.eligibility is not None:
        condition = exp.and_(condition, rules.holds(t.eligibility, names))
    value = (
        literal(float(t.score), Type.FLOAT)
        if t.score_expression is None
        else _double(rules.sql(t.score_expression, names, value=True, score=t.score))
    )
    return exp.Case(ifs=[exp.If(this=condition, true=value)])
