"""Prototype: the candidates as ONE pass over the population: per recipient, a list of its
candidate offers (struct per offer; NULL when not eligible), instead of a UNION ALL of one
SELECT per offer. DuckDB only (list functions)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from overture.batch.candidates import (
    RECIPIENT,
    _active,
    _Names,
    _Rules,
    _score,
    literal,
    segment_column,
)
from overture.catalog.scopes import Scopes
from overture.engine.compiled import Candidate
from overture.engine.plan import DecisionPlan


def candidate_lists_sql(
    plan: DecisionPlan,
    placement: str,
    population: str,
    *,
    now: dt.datetime,
    audience: str | None = None,
    context: Mapping[str, Any] | None = None,
    dialect: str = "duckdb",
) -> str:
    """SELECT recipient, cands: cands a list of {offer, score, ord, fallback, allowed} of
    the recipient's candidates (eligible; score > 0 unless fallback)."""
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
    items: list[exp.Expr] = []

    def item(cand: Candidate, score: exp.Expr, ord_: int, fallback: bool) -> exp.Expr:
        names = _Names(cand.offer.namespace, offer_types, context, context_types)
        conditions = [rules.holds(rule, names) for _cat, rule in cand.offer.category_rules]
        if cand.offer.eligibility is not None:
            conditions.append(rules.holds(cand.offer.eligibility, names))
        filters = [
            rules.holds(policy.rule, names)
            for policy, _key in cand.policies
            if policy.kind == "filter" and policy.rule is not None
        ]
        struct = exp.Struct(
            expressions=[
                exp.PropertyEQ(this=exp.to_identifier("offer"),
                               expression=exp.Literal.string(cand.offer.code)),
                exp.PropertyEQ(this=exp.to_identifier("score"),
                               expression=exp.cast(score, "DOUBLE")),
                exp.PropertyEQ(this=exp.to_identifier("ord"),
                               expression=exp.cast(exp.Literal.number(ord_), "INTEGER")),
                exp.PropertyEQ(this=exp.to_identifier("fallback"),
                               expression=exp.Boolean(this=fallback)),
                exp.PropertyEQ(this=exp.to_identifier("allowed"),
                               expression=exp.and_(*filters) if filters else exp.true()),
            ]
        )
        if not fallback:  # a ranked candidate needs a positive score
            conditions.append(
                exp.func("COALESCE", exp.GT(this=exp.Paren(this=score), expression=literal(0.0)),
                         exp.false())
            )
        return exp.Case(ifs=[exp.If(this=exp.and_(*conditions), true=struct)])

    for cand in compiled.candidates.get(audience, ()):
        if not _active(cand.offer.window, now):
            continue
        names = _Names(cand.offer.namespace, offer_types, context, context_types)
        score = _score(plan, rules, cand, names, now)
        if score is None:
            continue
        items.append(item(cand, score, cand.order, fallback=False))
    for position, cand in enumerate(compiled.fallbacks.get(audience, ())):
        if _active(cand.offer.window, now):
            items.append(item(cand, literal(0.0), position, fallback=True))
    listed = exp.func("list_value", *items) if items else exp.Array(expressions=[])
    body = exp.select(
        exp.alias_(exp.column(info.id_field, quoted=True), RECIPIENT),
        exp.alias_(listed, "cands"),
    ).from_("recipients")
    sql = body.with_("recipients", as_=recipients).sql(dialect=dialect)
    return sql


def score_list_sql(
    plan: DecisionPlan,
    placement: str,
    population: str,
    *,
    now: dt.datetime,
    audience: str | None = None,
    context: Mapping[str, Any] | None = None,
    dialect: str = "duckdb",
) -> tuple[str, list[str], list[int]]:
    """SELECT recipient, scores: scores[i] the score of ranked candidate i (in `codes`
    order, which is ord order) for the recipient, NULL when it is not a candidate (not
    eligible, not allowed by a filter, score <= 0)."""
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
    items: list[exp.Expr] = []
    codes: list[str] = []
    ords: list[int] = []
    for cand in sorted(compiled.candidates.get(audience, ()), key=lambda c: c.order):
        if not _active(cand.offer.window, now):
            continue
        names = _Names(cand.offer.namespace, offer_types, context, context_types)
        score = _score(plan, rules, cand, names, now)
        if score is None:
            continue
        conditions = [rules.holds(rule, names) for _cat, rule in cand.offer.category_rules]
        if cand.offer.eligibility is not None:
            conditions.append(rules.holds(cand.offer.eligibility, names))
        conditions += [
            rules.holds(policy.rule, names)
            for policy, _key in cand.policies
            if policy.kind == "filter" and policy.rule is not None
        ]
        score = exp.cast(score, "DOUBLE")
        conditions.append(
            exp.func("COALESCE", exp.GT(this=exp.Paren(this=score.copy()), expression=literal(0.0)), exp.false())
        )
        items.append(exp.Case(ifs=[exp.If(this=exp.and_(*conditions), true=score)]))
        codes.append(cand.offer.code)
        ords.append(cand.order)
    listed = exp.func("list_value", *items)
    body = exp.select(
        exp.alias_(exp.column(info.id_field, quoted=True), RECIPIENT),
        exp.alias_(listed, "scores"),
    ).from_("recipients")
    return body.with_("recipients", as_=recipients).sql(dialect=dialect), codes, ords
