"""Steps 1, 2 and 4 of the decision pipeline as one SQL query: who may get which offer on a
placement, and with what score.

For a target population (a table or a query with one row per recipient) the query returns
a row (recipient, offer, score, tie-break order, ...) for every candidate offer of the
placement that the recipient is eligible for and that has a positive score, and one for
every fallback offer the recipient is eligible for (or, on DuckDB, one row per recipient
with those as lists: one pass, no row per candidate), exactly as the
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
import functools
from collections.abc import Mapping, Sequence
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
class _Offer:
    """One candidate's SQL, generated once in the run's dialect: the rows query and the
    lists query are put together from these as text (a tree of 500 offers' rules is slow
    to build and to copy; the pieces are not)."""

    code: str
    ord: int  # ranked: the tie-break order; fallback: the fill order
    fallback: bool
    eligible: str  # every category rule and the offer's own rule hold
    allowed: str  # the placement's filter policies let it through
    score: str  # null or <= 0: not a candidate (fallbacks: 0)


class CandidateQuery:
    """The candidates of one placement over a population, as SQL: one row per
    (recipient, candidate) (`sql`, any dialect), or one row per recipient with its
    candidates as lists (`lists_sql`, DuckDB's list functions)."""

    def __init__(
        self,
        *,
        placement: str,
        audience: str,
        dialect: str,
        population: str,
        id_field: str,
        segments: Sequence[str],
        items: Sequence[_Offer],
    ) -> None:
        self.placement = placement
        self.audience = audience
        self.dialect = dialect
        self.population = population
        self.id_field = id_field  # the audience's id
        self.id_column = exp.column(id_field, quoted=True).sql(dialect=dialect)
        self._segments = tuple(segments)
        self.ranked = tuple(i for i in items if not i.fallback)  # in tie-break order
        self.fallbacks = tuple(i for i in items if i.fallback)  # in fill order
        self.offers = tuple(i.code for i in self.ranked)  # the active, scorable candidates

    @property
    def source(self) -> str:
        """The population as a FROM clause."""
        return _source(self.population)

    def recipients_sql(self, population: str | None = None) -> str:
        """The population with a column per segment (segment_column)."""
        source = self.source if population is None else _source(population)
        return f"SELECT {', '.join(('*', *self._segments))} FROM {source}"

    def ids_sql(self) -> str:
        """The population's ids, in DuckDB's dialect: allocation's statements are written
        in it (engines.WRITTEN_IN) and translated."""
        column = exp.column(self.id_field, quoted=True).sql(dialect="duckdb")
        return f"SELECT {column} FROM {self.source}"

    @property
    def recipients(self) -> str:
        return self.recipients_sql()

    @functools.cached_property
    def sql(self) -> str:
        """(recipient, offer, score, ord, fallback, allowed): a row for each ranked
        candidate the recipient is eligible for with a positive score, and for each
        fallback offer it is eligible for; `allowed` is the filter policies' verdict."""
        branches = [
            f"SELECT {self.id_column} AS {RECIPIENT}, {_string(item.code, self.dialect)} AS offer, "
            f"{item.score} AS score, {item.ord} AS ord, {str(item.fallback).upper()} AS fallback,"
            f" {item.allowed} AS allowed FROM recipients WHERE {item.eligible}"
            for item in (*self.ranked, *self.fallbacks)
        ]
        if not branches:  # nothing to choose from: an empty result of the same shape
            branches = [
                f"SELECT {self.id_column} AS {RECIPIENT}, CAST(NULL AS VARCHAR) AS offer, "
                "CAST(NULL AS DOUBLE) AS score, CAST(NULL AS INT) AS ord, FALSE AS fallback, "
                "TRUE AS allowed FROM recipients WHERE FALSE"
            ]
        union = "\nUNION ALL\n".join(branches)
        return (
            f"WITH recipients AS ({self.recipients}) "
            f"SELECT * FROM ({union}) AS c WHERE fallback OR {positive('score')}"
        )

    def lists_sql(self, population: str | None = None) -> str:
        """(recipient, ranked, fallbacks), one row per recipient of `population` (this
        query's by default). `ranked` holds, in no order, {ns: -score, i} for each ranked
        candidate i (1-based, in `ranked` order) the recipient is eligible for and allowed,
        with a positive score: sorted, it is the engine's order (score, then tie-break).
        `fallbacks` are the indexes of its eligible and allowed fallbacks, in fill order.

        DuckDB only, the fast path's single pass over the population. The scores are
        columns first and lists after, by concatenating one- or zero-element lists: a
        lambda over a 500-element list costs more than evaluating the rules."""
        assert self.dialect == "duckdb", "lists are DuckDB's"
        columns = [
            f"CASE WHEN {item.eligible} AND {item.allowed} THEN CAST({item.score} AS DOUBLE) END"
            f" AS _s{i}"
            for i, item in enumerate(self.ranked, 1)
        ] + [
            f"({item.eligible} AND {item.allowed}) AS _f{i}"
            for i, item in enumerate(self.fallbacks, 1)
        ]
        ranked = [
            f"CASE WHEN {positive(f'_s{i}')} THEN [{{'ns': -_s{i}, 'i': {i}}}] ELSE [] END"
            for i in range(1, len(self.ranked) + 1)
        ]
        fallbacks = [
            f"CASE WHEN _f{i} THEN [{i}] ELSE [] END" for i in range(1, len(self.fallbacks) + 1)
        ]
        return (
            f"WITH recipients AS ({self.recipients_sql(population)}) "
            f"SELECT {RECIPIENT}, {_flatten(ranked, 'STRUCT(ns DOUBLE, i INTEGER)')} AS ranked, "
            f"{_flatten(fallbacks, 'INTEGER')} AS fallbacks "
            f"FROM (SELECT {', '.join((f'{self.id_column} AS {RECIPIENT}', *columns))} "
            "FROM recipients) AS s"
        )


def positive(score: str) -> str:
    """A score the engine ranks: above zero, and a number (NaN - a NaN profile value in a
    weight's expression - is above everything in DuckDB and Spark, and nothing in Python)."""
    return f"({score} > 0 AND NOT isnan({score}))"


def _source(population: str) -> str:
    return population if population.isidentifier() else f"{population} AS p"


def _flatten(lists: Sequence[str], type_: str) -> str:
    if not lists:
        return f"CAST([] AS {type_}[])"
    return f"flatten([{', '.join(lists)}])"


def _string(value: str, dialect: str) -> str:
    return exp.Literal.string(value).sql(dialect=dialect)


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
        return exp.Coalesce(this=self.sql(rule, names), expressions=[exp.false()])


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
    """The candidates over `population` (a table name, or a parenthesised query whose
    columns are the audience's fields) of the placement's ranked candidates (eligible,
    score > 0; `ord` breaks ties) and fallback offers (eligible; `ord` is the fill
    order, score 0), with whether the placement's filter policies allow each."""
    audience = audience or plan.default_audience
    info = plan.audiences[audience]
    compiled = plan.placements[placement]
    scopes = Scopes(plan.catalog)
    rules = _Rules(scopes, audience, now, dialect)
    context = dict(context or {})
    context_types = dict(plan.catalog.context)
    offer_types = scopes.offer_fields

    def text(e: exp.Expr) -> str:
        return e.sql(dialect=dialect)

    plain = _Names({}, offer_types, context, context_types)
    segments = [
        f"{text(rules.holds(rule, plain))} AS {text(exp.column(segment_column(name), quoted=True))}"
        for name, rule in info.segments.items()
    ]

    def item(cand: Candidate, names: _Names, score: str, ord_: int, fallback: bool) -> _Offer:
        conditions = [rules.holds(rule, names) for _cat, rule in cand.offer.category_rules]
        if cand.offer.eligibility is not None:
            conditions.append(rules.holds(cand.offer.eligibility, names))
        filters = [
            rules.holds(policy.rule, names)
            for policy, _key in cand.policies
            if policy.kind == "filter" and policy.rule is not None
        ]
        return _Offer(
            cand.offer.code,
            ord_,
            fallback,
            " AND ".join(f"({text(c)})" for c in conditions) or "TRUE",
            " AND ".join(f"({text(f)})" for f in filters) or "TRUE",
            score,
        )

    items: list[_Offer] = []
    for cand in sorted(compiled.candidates.get(audience, ()), key=lambda c: c.order):
        if not _active(cand.offer.window, now):
            continue
        names = _Names(cand.offer.namespace, offer_types, context, context_types)
        score = _score(plan, rules, cand, names, now)
        if score is None:
            continue  # no weight applies at this instant: nobody gets it
        items.append(item(cand, names, f"({text(score)})", cand.order, fallback=False))
    for position, cand in enumerate(compiled.fallbacks.get(audience, ())):
        if _active(cand.offer.window, now):  # fill order; targeting and score do not apply
            names = _Names(cand.offer.namespace, offer_types, context, context_types)
            items.append(item(cand, names, text(literal(0.0)), position, fallback=True))
    return CandidateQuery(
        placement=placement,
        audience=audience,
        dialect=dialect,
        population=population,
        id_field=info.id_field,
        segments=segments,
        items=items,
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
    return exp.Greatest(this=values[0], expressions=values[1:], ignore_nulls=True)


def _double(e: exp.Expr) -> exp.Expr:
    return exp.Cast(this=e, to=exp.DataType.build("DOUBLE"))


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
