"""What a simulation tells a marketer: where each offer went, and why it went nowhere else.

The funnel follows the decision pipeline for each offer, over the whole population: of
the recipients, how many each category rule, the offer's eligibility rule, the score
(not targeted, no weight: nothing to rank by) and each filter policy removed, then the
history (suppression), the run itself (capping, inventory), and the better offers that
filled the slots (outranked). A recipient is counted at the first step that removes it,
so the steps add up to the population.

The first part is one more query over the population (candidates.py's rules, each step a
CASE arm); the rest is the candidate rows (materialised once more: the fast allocation
never makes them) read against the allocation's own tables, not a second run.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from overture.batch.allocate import Allocation
from overture.batch.candidates import (
    CandidateQuery,
    _active,
    _Names,
    _Rules,
    _score,
    segment_column,
)
from overture.batch.engines import SqlEngine
from overture.batch.output import Output
from overture.batch.policies import used_up, with_run
from overture.catalog.scopes import Scopes
from overture.engine.compiled import Candidate
from overture.engine.plan import DecisionPlan

_TAIL = ("suppression", "capping", "inventory", "outranked")


def funnel_sql(
    plan: DecisionPlan,
    placement: str,
    recipients: str,
    *,
    now: dt.datetime,
    audience: str,
    context: Mapping[str, Any] | None,
    dialect: str,
) -> tuple[str, dict[tuple[str, bool], str]]:
    """The query counting, per (offer, fallback), recipients by the first rule step that
    removes them (NULL: none does), and the offers nobody can get whatever the profile
    (inactive, no weight at this instant) with the reason."""
    compiled = plan.placements[placement]
    scopes = Scopes(plan.catalog)
    rules = _Rules(scopes, audience, now, dialect)
    context = dict(context or {})
    context_types = dict(plan.catalog.context)
    never: dict[tuple[str, bool], str] = {}
    branches: list[exp.Select] = []

    def branch(cand: Candidate, score: exp.Expr | None, fallback: bool) -> exp.Select:
        names = _Names(cand.offer.namespace, scopes.offer_fields, context, context_types)
        steps: list[tuple[str, exp.Expr]] = [
            (f"category {cat}", rules.holds(rule, names)) for cat, rule in cand.offer.category_rules
        ]
        if cand.offer.eligibility is not None:
            steps.append(("eligibility", rules.holds(cand.offer.eligibility, names)))
        if score is not None:
            positive = exp.and_(
                exp.GT(this=exp.Paren(this=score), expression=exp.Literal.number(0)),
                exp.Not(this=exp.IsNan(this=exp.Paren(this=score.copy()))),
            )
            steps.append(("score", exp.func("COALESCE", positive, exp.false())))
        steps += [
            (f"filter {policy.name}", rules.holds(policy.rule, names))
            for policy, _key in cand.policies
            if policy.kind == "filter" and policy.rule is not None
        ]
        failed: exp.Expr = (
            exp.Case(
                ifs=[
                    exp.If(this=exp.Not(this=exp.Paren(this=cond)), true=exp.Literal.string(name))
                    for name, cond in steps
                ]
            )
            if steps
            else exp.cast(exp.Null(), "VARCHAR")
        )
        return exp.select(
            exp.alias_(exp.Literal.string(cand.offer.code), "offer"),
            exp.alias_(exp.Boolean(this=fallback), "fallback"),
            exp.alias_(failed, "failed"),
        ).from_("recipients")

    for cand in compiled.candidates.get(audience, ()):
        key = (cand.offer.code, False)
        if not _active(cand.offer.window, now):
            never[key] = "not active at the run's instant (start/end)"
            continue
        names = _Names(cand.offer.namespace, scopes.offer_fields, context, context_types)
        score = _score(plan, rules, cand, names, now)
        if score is None:
            never[key] = "no weight applies at the run's instant"
            continue
        branches.append(branch(cand, score, fallback=False))
    for cand in compiled.fallbacks.get(audience, ()):
        if _active(cand.offer.window, now):
            branches.append(branch(cand, None, fallback=True))
        else:
            never[(cand.offer.code, True)] = "not active at the run's instant (start/end)"
    if not branches:
        return "", never
    union: exp.Expr = branches[0]
    for other in branches[1:]:
        union = exp.union(union, other, distinct=False, copy=False)
    query = (
        exp.select("offer", "fallback", "failed", exp.alias_(exp.func("COUNT", exp.Star()), "n"))
        .from_(exp.Subquery(this=union, alias="f"))
        .group_by("offer", "fallback", "failed")
        .with_("recipients", as_=f"SELECT * FROM ({recipients}) r", dialect=dialect)
    )
    return query.sql(dialect=dialect), never


def simulation_figures(
    allocation: Allocation,
    output: Output,
    plan: DecisionPlan,
    *,
    now: dt.datetime,
    context: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The report's figures (report.py draws them; `--json` prints them)."""
    engine = allocation.engine
    query = allocation.candidates
    audience = query.audience
    info = plan.audiences[audience]
    sql, never = funnel_sql(
        plan,
        query.placement,
        query.recipients,
        now=now,
        audience=audience,
        context=context,
        dialect=engine.dialect,
    )
    engine.create(
        "_fig_rules",
        sql
        or "SELECT 'x' AS offer, false AS fallback, "
        "CAST(NULL AS VARCHAR) AS failed, 0 AS n WHERE false",
        dialect=engine.dialect,
    )
    _candidates(engine, query)
    counts: dict[tuple[str, bool], dict[str | None, int]] = defaultdict(dict)
    for offer, fallback, failed, n in engine.rows("SELECT * FROM _fig_rules"):
        counts[(offer, bool(fallback))][failed] = int(n)
    for offer, fallback, step, n in engine.rows(
        _TAIL_SQL.format(n=allocation.n, capped=used_up("capping", "_fig_usage"))
    ):
        counts[(offer, bool(fallback))][step] = int(n)
    population = engine.rows(f"SELECT count(*) FROM ({query.recipients}) r")[0][0]
    # an offer may be both a ranked candidate and a fallback: each role is an entry of its
    # own, with its own propositions and ranks
    by_rank: dict[tuple[str, bool], dict[str, int]] = defaultdict(dict)
    allocated: dict[tuple[str, bool], int] = defaultdict(int)
    for offer, fallback, rank, n in engine.rows(
        f"SELECT offer, fallback, rank, count(*) FROM {output.table} GROUP BY offer, fallback, rank"
    ):
        key = (offer, bool(fallback))
        by_rank[key][str(rank)] = by_rank[key].get(str(rank), 0) + int(n)
        allocated[key] += int(n)
    scores = {
        offer: {
            "count": int(n),
            "min": lo,
            "p25": q1,
            "median": q2,
            "p75": q3,
            "max": hi,
        }
        for offer, n, lo, q1, q2, q3, hi in engine.rows(
            "SELECT offer, count(*), min(score), approx_quantile(score, 0.25), "
            "approx_quantile(score, 0.5), approx_quantile(score, 0.75), max(score) "
            "FROM _fig_cand WHERE NOT fallback GROUP BY offer"
        )
    }
    placement = plan.placements[query.placement]
    offers: list[dict[str, Any]] = []
    cands = [
        *((c, False) for c in placement.candidates.get(audience, ())),
        *((c, True) for c in placement.fallbacks.get(audience, ())),
    ]
    for cand, fallback in cands:
        key = (cand.offer.code, fallback)
        steps = _funnel(counts.get(key, {}), population, allocated.get(key, 0), key in never)
        given = allocated.get(key, 0)
        why_none: str | None = None
        if not given:
            why_none = never.get(key) or _why_none(steps)
            other = allocated.get((cand.offer.code, not fallback), 0)
            if other:
                role = "as a ranked offer" if fallback else "as a fallback"
                why_none += f" (given {role} {other} times)"
        offers.append(
            {
                "offer": cand.offer.code,
                "name": cand.offer.name,
                "category": cand.offer.category,
                "fallback": fallback,
                "propositions": given,
                "by_rank": by_rank.get(key, {}),
                "funnel": steps,
                "why_none": why_none,
                "score": scores.get(cand.offer.code) if not fallback else None,
            }
        )
    offers.sort(key=lambda o: (-int(o["propositions"]), str(o["offer"])))
    categories = engine.rows(
        f"SELECT category, count(*) AS n FROM {output.table} GROUP BY category ORDER BY n DESC"
    )
    segments = []
    if info.segments:
        columns = [segment_column(s) for s in info.segments]
        sums = ", ".join(f'sum(CASE WHEN r."{c}" THEN 1 ELSE 0 END)' for c in columns)
        given_sums = ", ".join(f'sum(CASE WHEN r."{c}" THEN g.n ELSE 0 END)' for c in columns)
        in_segment = engine.rows(f"SELECT {sums} FROM _out_recipients r")[0]
        to_them = engine.rows(
            f"SELECT {given_sums} FROM _out_recipients r JOIN "
            f"(SELECT recipient, count(*) AS n FROM {output.table} GROUP BY recipient) g "
            f'ON g.recipient = r."{info.id_field}"'
        )[0]
        segments = [
            {"segment": s, "recipients": int(a or 0), "propositions": int(b or 0)}
            for s, a, b in zip(info.segments, in_segment, to_them, strict=True)
        ]
    totals = engine.rows(f"SELECT count(*), count(DISTINCT recipient) FROM {output.table}")[0]
    ranks = engine.rows(f"SELECT rank, count(*) FROM {output.table} GROUP BY rank ORDER BY rank")
    return {
        **dict(meta or {}),
        "placement": query.placement,
        "audience": audience,
        "n": allocation.n,
        "at": now.isoformat(),
        "engine": engine.name,
        "recipients": int(population),
        "recipients_with_offers": int(totals[1]),
        "propositions": int(totals[0]),
        "rounds": allocation.rounds,
        "inventory_refusals": allocation.refusals,
        "render_errors": output.render_error_count,
        "ranks": [{"rank": int(r), "propositions": int(n)} for r, n in ranks],
        "offers": offers,
        "categories": [{"category": c, "propositions": int(n)} for c, n in categories],
        "segments": segments,
    }


def _candidates(engine: SqlEngine, query: CandidateQuery) -> None:
    """The candidates the rounds chose from, as rows (`_fig_cand`: allowed by the
    filters, not suppressed; `_fig_suppressed`: how many suppression removed, per offer),
    and each recipient's usage of each capping policy at the end (`_fig_usage`: history
    and run), whichever way the allocation ran."""
    engine.create("_fig_cand", query.sql, dialect=query.dialect)
    suppressed = used_up("suppression", "_alloc_used")
    engine.create(
        "_fig_suppressed",
        f"SELECT c.offer AS offer, c.fallback AS fallback, count(*) AS n FROM _fig_cand c "
        f"WHERE c.allowed AND {suppressed} GROUP BY c.offer, c.fallback",
    )
    engine.create("_fig_cand", f"SELECT * FROM _fig_cand c WHERE c.allowed AND NOT {suppressed}")
    engine.create("_fig_usage", with_run("_alloc_used"))


# After the rules: why each remaining candidate did or did not get its offer (slots filled
# by better offers first: a channel cap the run itself filled is not the cap's doing)
_TAIL_SQL = """
SELECT c.offer, c.fallback,
       CASE WHEN EXISTS (SELECT 1 FROM _alloc_chosen x WHERE x.recipient = c.recipient
                         AND x.offer = c.offer AND x.fallback = c.fallback)
            THEN 'allocated'
            WHEN (SELECT count(*) FROM _alloc_chosen x WHERE x.recipient = c.recipient) >= {n}
            THEN 'outranked'
            WHEN {capped} THEN 'capping'
            WHEN EXISTS (SELECT 1 FROM _alloc_refused r
                         WHERE r.recipient = c.recipient AND r.offer = c.offer)
              OR EXISTS (SELECT 1 FROM _alloc_inv i
                         WHERE i.offer = c.offer AND i.remaining <= 0) THEN 'inventory'
            ELSE 'outranked' END AS step,
       count(*) AS n
FROM _fig_cand c
GROUP BY 1, 2, 3
UNION ALL
SELECT offer, fallback, 'suppression' AS step, n FROM _fig_suppressed
"""


def _funnel(
    counts: Mapping[str | None, int], population: int, given: int, never: bool
) -> list[dict[str, Any]]:
    """Ordered steps with what each removed and what remains after it."""
    if never:
        return [
            {"step": "population", "removed": 0, "remaining": population},
            {"step": "not a candidate now", "removed": population, "remaining": 0},
        ]
    rule_steps = [k for k in counts if k is not None and k not in (*_TAIL, "allocated")]
    order = (
        sorted((k for k in rule_steps if k.startswith("category ")), key=str)
        + [k for k in ("eligibility", "score") if k in counts]
        + sorted(k for k in rule_steps if k.startswith("filter "))
        + list(_TAIL)
    )
    out = [{"step": "population", "removed": 0, "remaining": population}]
    remaining = population
    for step in order:
        removed = counts.get(step, 0)
        remaining -= removed
        out.append({"step": step, "removed": removed, "remaining": remaining})
    out.append({"step": "allocated", "removed": 0, "remaining": given})
    return out


def _why_none(steps: list[dict[str, Any]]) -> str:
    """The step that removed the last recipients (or the biggest one), in words."""
    for step in steps[1:]:
        if step["remaining"] == 0 and step["removed"]:
            if step["step"] == "outranked":
                return (
                    f"outranked: better offers filled the slots of all {step['removed']} "
                    "recipients it was open to"
                )
            return f"{step['step']} removed every remaining recipient ({step['removed']})"
    biggest = max(steps[1:-1], key=lambda s: s["removed"], default=None)
    if biggest is None or not biggest["removed"]:
        return "nobody in the population"
    return f"mostly {biggest['step']} ({biggest['removed']} recipients)"
