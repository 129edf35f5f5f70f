"""The decision pipeline (DESIGN.md §4), run for each placement of a request, in order:

1. candidates   offers of the request's audience valid on the placement and active now,
                within the request's categories and themes;
2. eligibility  every ancestor category's rule (root first, each evaluated once per
                request) and the offer's rule; an offer targeted by treatment rules must
                have one whose segment (and extra condition) holds;
3. policies     filters, inventory, suppression and capping, reading the history; capping
                also counts what this request already chose;
4. score        highest applicable weight × category multipliers × treatment score
                (× the learner's factor); a weight or score of 0 is not eligible;
5. arbitration  by score, then business value, then code; no offer twice in one request;
                at most `max_per_category` per category;
6. fallback     free slots are filled from the placement's fallback offers, then offers of
                fallback categories (eligibility and policies still apply, targeting and
                scores do not); no offer at all: the placement's default content;
7. content      rendered per proposition; each gets a unique tracking code.

Speed: scores are cheap and need no history, so candidates are scored first and then
walked in score order; eligibility and policies are evaluated only until the placement is
full. With `explain`, every candidate is evaluated and the walk goes to the end, so that
each one's fate is told; the offers chosen are the same.

A rule or template that raises makes its offer ineligible and is recorded in
`Decision.rule_errors`; it never fails the decision.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast

from overture.engine.compiled import (
    FIXED,
    Candidate,
    CompiledPlacement,
    CompiledRule,
    ScoringRow,
)
from overture.engine.history import NO_HISTORY, History, inventory_since
from overture.engine.render import base_variables, render
from overture.engine.request import (
    Decision,
    DecisionRequest,
    PlacementDecision,
    PlacementRequest,
    Proposition,
    RequestError,
    RuleFailure,
    Step,
    Trace,
)
from overture.rules.parser import suggest
from overture.rules.types import Instant

if TYPE_CHECKING:
    from overture.engine.plan import DecisionPlan

Ranked = tuple[float, int, Candidate]  # (-score, tie-break order, candidate): sorts best first
_UNSET = object()


class Learner(Protocol):
    """An optional model whose factor multiplies an offer's score (1.0: no opinion)."""

    def factor(
        self,
        offer_code: str,
        placement: str,
        profile: Mapping[str, Any],
        context: Mapping[str, Any],
    ) -> float: ...


class _Segments(dict[str, bool]):
    """Segment flags, each evaluated on first use and then remembered for the request.

    It holds what its rules read, not the request's _State: a reference back to the state
    (which holds it) made every decision a reference cycle, which only the garbage
    collector frees; with ~20 objects of each decision waiting for it, the young
    generation filled every few hundred decisions and each collection stopped the event
    loop for ~10 ms (measured: 20 µs a decision, and the runtime's p99)."""

    def __init__(
        self,
        rules: Mapping[str, CompiledRule],
        profile: Mapping[str, Any],
        context: Mapping[str, Any],
        instant: Instant,
        errors: list[RuleFailure],
    ) -> None:
        super().__init__()
        self._rules = rules
        self._profile = profile
        self._context = context
        self._instant = instant
        self._errors = errors

    def __missing__(self, name: str) -> bool:
        rule = self._rules.get(name)
        value = False
        if rule is not None:
            try:
                value = rule.run(self._profile, self._context, self, {}, self._instant) is True
            except Exception as exc:  # a rule error must never fail a decision
                self._errors.append(
                    RuleFailure("", f"segment {name}", f"{type(exc).__name__}: {exc}")
                )
        self[name] = value
        return value


class _State:
    """What one request accumulates across its placements."""

    def __init__(
        self,
        plan: DecisionPlan,
        request: DecisionRequest,
        *,
        history: History,
        learner: Learner | None,
        audience: str,
        profile: dict[str, Any],
        context: dict[str, Any],
        profile_id: str | None,
        now: dt.datetime,
    ) -> None:
        self.plan = plan
        self.request = request
        self.history = history
        self.learner = learner
        self.audience = audience
        self.profile = profile
        self.context = context
        self.profile_id = profile_id
        self.now = now
        self.instant = Instant.at(now)
        self.explain = request.explain
        self.errors: list[RuleFailure] = []
        self.categories: dict[str, bool] = {}  # category rules not reading offer.*, by name
        self.used: dict[tuple[str, str], int] = {}  # capping/inventory budget spent here
        self.chosen: set[str] = set(request.exclude)
        self.segments = _Segments(
            plan.audiences[audience].segments, profile, context, self.instant, self.errors
        )
        # by treatment group, computed on first use (_UNSET until then)
        self.treatment_scores: list[float | object | None] = [_UNSET] * len(plan.treatment_groups)
        self._variables: dict[str, Any] | None = None

    @property
    def variables(self) -> dict[str, Any]:
        """Template variables, prepared on first render ("offer" and "placement" vary)."""
        if self._variables is None:
            self._variables = base_variables()
            self._variables.update(
                profile=self.profile, context=self.context, segment=self.segments
            )
        return self._variables

    def run(self, rule: CompiledRule, offer_code: str, what: str, offer: Mapping[str, Any]) -> Any:
        """Run a compiled rule; an exception is recorded and gives None."""
        try:
            return rule.run(self.profile, self.context, self.segments, offer, self.instant)
        except Exception as exc:  # a rule error must never fail a decision
            self.errors.append(RuleFailure(offer_code, what, f"{type(exc).__name__}: {exc}"))
            return None


def decide(
    plan: DecisionPlan, request: DecisionRequest, history: History, learner: Learner | None = None
) -> Decision:
    audience, profile, context = _check_request(plan, request)
    now = request.now or dt.datetime.now(dt.UTC)
    if now.tzinfo is not None:
        now = now.astimezone(dt.UTC).replace(tzinfo=None)
    profile_id = request.profile_id
    if profile_id is None:
        id_value = profile.get(plan.audiences[audience].id_field)
        profile_id = None if id_value is None else str(id_value)
    state = _State(
        plan,
        request,
        history=history,
        learner=learner,
        audience=audience,
        profile=profile,
        context=context,
        profile_id=profile_id,
        now=now,
    )
    decisions = tuple(
        _decide_placement(state, plan.placements[p.placement], p) for p in request.placements
    )
    # explain may evaluate a rule twice; report each failure once
    errors = tuple(dict.fromkeys(state.errors))
    segments: tuple[str, ...] = ()
    if request.segments and any(d.propositions for d in decisions):
        # every segment of the audience, for the history (one the decision did not need
        # is evaluated now; a failure there is not the decision's, so not in `errors`)
        flags = state.segments
        segments = tuple(name for name in plan.audiences[audience].segments if flags[name])
    return Decision(audience, profile_id, now, decisions, errors, segments)


def preview(plan: DecisionPlan, request: DecisionRequest, offer_code: str) -> dict[str, Any]:
    """The content `offer_code` would show on each requested placement for the request's
    profile, rendered exactly as a decision renders it, whatever the offer's eligibility,
    score and policies (what an offer manager checks while writing the content). Per
    placement: the content, or a sentence saying why there is none."""
    audience, profile, context = _check_request(plan, request)
    now = request.now or dt.datetime.now(dt.UTC)
    if now.tzinfo is not None:
        now = now.astimezone(dt.UTC).replace(tzinfo=None)
    state = _State(
        plan,
        request,
        history=NO_HISTORY,
        learner=None,
        audience=audience,
        profile=profile,
        context=context,
        profile_id=request.profile_id,
        now=now,
    )
    out: dict[str, Any] = {}
    for asked in request.placements:
        pl = plan.placements[asked.placement]
        found = [c for c in pl.candidates.get(audience, ()) if c.offer.code == offer_code]
        if not found:
            out[pl.name] = (
                f"{offer_code} is not offered on {pl.name} to the {audience} audience "
                "(not listed for this placement, another audience, or its validity is over)"
            )
            continue
        variables = state.variables
        variables["offer"] = found[0].offer.namespace
        variables["placement"] = pl.variables
        try:
            out[pl.name] = render(found[0].content, variables)
        except Exception as exc:  # the template's error is the answer
            out[pl.name] = f"the content fails to render: {type(exc).__name__}: {exc}"
    return out


def _check_request(
    plan: DecisionPlan, request: DecisionRequest
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    problems: list[str] = []
    audience = request.audience or plan.default_audience
    info = plan.audiences.get(audience)
    if info is None:
        problems.append(f"unknown audience {audience!r}; known: {', '.join(plan.audiences)}")
        raise RequestError(problems)
    profile, bad = info.coerce(request.profile)
    problems.extend(bad)
    context, bad = plan.coerce_context(request.context)
    problems.extend(bad)
    if not request.placements:
        problems.append("ask for at least one placement")
    for p in request.placements:
        if p.placement not in plan.placements:
            hint = suggest(p.placement, list(plan.placements))
            problems.append(f"unknown placement {p.placement!r}" + (f"; {hint}" if hint else ""))
        if p.count is not None and p.count < 1:
            problems.append(f"count for {p.placement!r} must be at least 1, not {p.count}")
    for name in sorted(request.categories - plan.categories):
        hint = suggest(name, list(plan.categories))
        problems.append(f"unknown category {name!r}" + (f"; {hint}" if hint else ""))
    if problems:
        raise RequestError(problems)
    return audience, profile, context


def _decide_placement(
    st: _State, pl: CompiledPlacement, req: PlacementRequest
) -> PlacementDecision:
    n = pl.max_offers if req.count is None else min(req.count, pl.max_offers)
    traces: list[Trace] | None = [] if st.explain else None
    ranked = _rank(st, pl) if traces is None else _rank_explained(st, pl, traces)
    selected: list[Proposition] = []
    per_category: dict[str, int] = {}
    for negative, _, cand in ranked:
        full = len(selected) >= n
        if full and traces is None:
            break
        score = -negative
        code = cand.offer.code
        if code in st.chosen:
            _trace(
                traces,
                code,
                "arbitration",
                "excluded by the request"
                if code in st.request.exclude
                else "already chosen for an earlier placement of this request",
                score,
            )
            continue
        step: Step = "policies"
        if traces is None and _ineligible(st, cand) is not None:
            continue  # (with explain, eligibility was evaluated and told while ranking)
        why = _blocked(st, cand)
        if why is not None:
            _trace(traces, code, step, why, score)
            continue
        if full:
            _trace(traces, code, "arbitration", f"ranked below the top {n}", score)
            continue
        category = cand.offer.category
        cap = pl.max_per_category
        if cap is not None and per_category.get(category, 0) >= cap:
            _trace(
                traces,
                code,
                "arbitration",
                f"the placement takes {cap} offer(s) per category and {category!r} is full",
                score,
            )
            continue
        if _propose(st, pl, cand, score, selected, fallback=False, traces=traces):
            per_category[category] = per_category.get(category, 0) + 1
    if len(selected) < n:
        _fill(st, pl, n, selected, traces)
    default = None if selected else _render_default(st, pl)
    return PlacementDecision(
        pl.name, pl.channel, tuple(selected), default, None if traces is None else tuple(traces)
    )


def _rank(st: _State, pl: CompiledPlacement) -> Iterable[Ranked]:
    """Candidates active now (within the request's restrictions), best first, lazily.

    Candidates whose score cannot change were sorted when the plan was built; only the
    others are scored here, and the two orders are merged as the caller walks them, so a
    decision that fills its slots early never looks at most of the fixed ones."""
    if st.learner is not None:  # a learner may change any score
        return _score_all(st, pl, pl.every.get(st.audience, ()))
    dynamic = _score_all(st, pl, pl.dynamic.get(st.audience, ()))
    fixed = pl.fixed.get(st.audience, ())
    if not fixed:
        return dynamic
    return _merge(st, fixed, dynamic)


def _score_all(st: _State, pl: CompiledPlacement, rows: Iterable[ScoringRow]) -> list[Ranked]:
    """Score candidates, best first. This loop runs for many candidates of every decision,
    so it reads precomputed rows and inlines the common cases."""
    ranked: list[Ranked] = []
    now = st.now
    categories, themes = st.request.categories, st.request.themes
    restricted = bool(categories or themes)
    learner = st.learner
    group_scores = st.treatment_scores
    for cand, start, end, kind, weight, order in rows:
        if (start is not None and now < start) or (end is not None and now >= end):
            continue
        if restricted and _outside(cand, categories, themes) is not None:
            continue
        if kind >= 0:  # weight × the treatment group's score
            group = group_scores[kind]
            if group is _UNSET:
                group = _group_score(st, kind)
            if group is None:
                continue
            score = weight * cast(float, group)
            if not score > 0:  # a weight or treatment score of 0 is not eligible (as _score;
                continue  # 0 × an infinite score is NaN)
        elif kind == FIXED:
            score = weight
        else:
            full = _score(st, cand)
            if full is None:
                continue
            score = full
        if learner is not None:
            score *= learner.factor(cand.offer.code, pl.name, st.profile, st.context)
            if score <= 0:
                continue
        ranked.append((-score, order, cand))
    ranked.sort()
    return ranked


def _merge(st: _State, fixed: tuple[Ranked, ...], dynamic: list[Ranked]) -> Iterator[Ranked]:
    """Both sorted sequences in one order, skipping fixed candidates not active now or
    outside the request's restrictions (the dynamic ones were filtered when scored)."""
    now = st.now
    categories, themes = st.request.categories, st.request.themes
    restricted = bool(categories or themes)
    d, nd = 0, len(dynamic)
    for item in fixed:
        start, end = item[2].offer.window
        if (start is not None and now < start) or (end is not None and now >= end):
            continue
        if restricted and _outside(item[2], categories, themes) is not None:
            continue
        while d < nd and dynamic[d] < item:
            yield dynamic[d]
            d += 1
        yield item
    yield from dynamic[d:]


def _rank_explained(st: _State, pl: CompiledPlacement, traces: list[Trace]) -> list[Ranked]:
    """As _rank, evaluating eligibility too and telling why each candidate drops out."""
    ranked: list[Ranked] = []
    for cand in pl.candidates.get(st.audience, ()):
        code = cand.offer.code
        why = _inactive(cand, st.now) or _outside(cand, st.request.categories, st.request.themes)
        if why is not None:
            _trace(traces, code, "candidates", why)
            continue
        failed = _ineligible(st, cand)
        if failed is not None:
            _trace(traces, code, "eligibility", _not_true(failed))
            continue
        score = cand.fixed_score if cand.fixed_score is not None else _score(st, cand)
        if score is not None and st.learner is not None:
            score *= st.learner.factor(code, pl.name, st.profile, st.context)
        if score is None or score <= 0:
            step, why = _unscored(st, cand)
            _trace(traces, code, step, why)
            continue
        ranked.append((-score, cand.order, cand))
    ranked.sort()
    return ranked


def _inactive(cand: Candidate, now: dt.datetime) -> str | None:
    start, end = cand.offer.window
    if (start is not None and now < start) or (end is not None and now >= end):
        return f"not active now (valid {_describe_window(start, end)})"
    return None


def _outside(cand: Candidate, categories: frozenset[str], themes: frozenset[str]) -> str | None:
    if categories and categories.isdisjoint(cand.offer.categories):
        return "outside the requested categories"
    if themes and themes.isdisjoint(cand.offer.themes):
        return "has none of the requested themes"
    return None


def _ineligible(st: _State, cand: Candidate) -> tuple[str, CompiledRule] | None:
    """The rule that rejects the offer: (category name, or "" for the offer's own rule;
    the rule), or None. Not a sentence: most rejections are never told (see _not_true)."""
    offer = cand.offer
    ns = offer.namespace
    for name, rule in offer.category_rules:
        if rule.uses_offer:
            ok = st.run(rule, offer.code, f"category {name}", ns) is True
        else:
            known = st.categories.get(name)
            if known is None:
                known = st.run(rule, offer.code, f"category {name}", ns) is True
                st.categories[name] = known
            ok = known
        if not ok:
            return name, rule
    own = offer.eligibility
    if own is None:
        return None
    try:  # st.run inlined: this is the most frequent rule call
        ok = own.run(st.profile, st.context, st.segments, ns, st.instant) is True
    except Exception as exc:  # a rule error must never fail a decision
        st.errors.append(RuleFailure(offer.code, "eligibility", f"{type(exc).__name__}: {exc}"))
        ok = False
    return None if ok else ("", own)


def _not_true(failed: tuple[str, CompiledRule]) -> str:
    category, rule = failed
    where = f"category {category!r} rule" if category else "eligibility rule"
    return f"{where} is not true: {rule.source}"


def _score(st: _State, cand: Candidate) -> float | None:
    """Weight × active multipliers × treatment score, or None when the offer cannot be
    scored (see _unscored for why). The learner's factor is applied by the caller."""
    offer = cand.offer
    if offer.targeted:
        treatment = _treatment_score(st, cand)
        if treatment is None:
            return None
    else:
        treatment = st.plan.default_score
    weight = cand.static_weight
    if weight is None:
        weight = _weight(st, cand)
        if weight is None:
            return None
    if weight <= 0:
        return None
    score = weight * treatment
    for factor, (start, end) in offer.multipliers:
        if (start is None or st.now >= start) and (end is None or st.now < end):
            score *= factor
    return score if score > 0 else None


def _unscored(st: _State, cand: Candidate) -> tuple[Step, str]:
    """Why an offer has no score (for explain)."""
    offer = cand.offer
    if offer.targeted and _treatment_score(st, cand) is None:
        segments = sorted({t.segment for t in offer.treatments})
        return "eligibility", (
            f"no treatment rule targets it here for this profile (segments: {', '.join(segments)})"
        )
    weight = cand.static_weight if cand.static_weight is not None else _weight(st, cand)
    if weight is None:
        return "score", "none of its weights applies (periods, placements or rules)"
    if weight <= 0:
        return "score", "its weight is 0: not eligible"
    return "score", "its score is 0"


def _treatment_score(st: _State, cand: Candidate) -> float | None:
    """The highest score among the treatment rules that apply, as in Interact."""
    segments = st.segments
    group = cand.treatment_group
    best: float | None = None
    if group >= 0:
        known = st.treatment_scores[group]
        best = _group_score(st, group) if known is _UNSET else cast(float | None, known)
    ns = cand.offer.namespace
    for t in cand.conditional_treatments:
        if not segments[t.segment]:
            continue
        if (
            t.eligibility is not None
            and st.run(t.eligibility, cand.offer.code, f"treatment {t.name}", ns) is not True
        ):
            continue
        value = (
            t.score
            if t.score_expression is None
            else st.run(t.score_expression, cand.offer.code, f"treatment {t.name} score", ns)
        )
        if value is not None and (best is None or value > best):
            best = float(value)
    return best


def _group_score(st: _State, group: int) -> float | None:
    """The best score of a group of plain treatment rules whose segment holds (memoised)."""
    best = None
    for segment, score in st.plan.treatment_groups[group]:  # best first
        if st.segments[segment]:
            best = score
            break
    st.treatment_scores[group] = best
    return best


def _weight(st: _State, cand: Candidate) -> float | None:
    """The highest applicable weight (Adobe's rule), or None when none applies."""
    best: float | None = None
    now = st.now
    ns = cand.offer.namespace
    for w in cand.weights:
        start, end = w.window
        if (start is not None and now < start) or (end is not None and now >= end):
            continue
        if w.rule is not None and st.run(w.rule, cand.offer.code, "weight rule", ns) is not True:
            continue
        value = (
            w.static
            if w.expression is None
            else st.run(w.expression, cand.offer.code, "weight", ns)
        )
        if value is not None and (best is None or value > best):
            best = float(value)
    return best


def _blocked(st: _State, cand: Candidate) -> str | None:
    """Why a presentation policy removes the offer here, or None."""
    code = cand.offer.code
    pid = st.profile_id
    history = st.history
    for policy, key in cand.policies:
        kind = policy.kind
        if kind == "filter":
            assert policy.rule is not None
            if st.run(policy.rule, code, f"policy {policy.name}", cand.offer.namespace) is not True:
                return f"filter {policy.name!r}: {policy.rule.source} is not true"
        elif kind == "inventory":
            since = inventory_since(policy.per, st.now)
            used = history.total(code, "presented", since) + st.used.get((policy.name, key), 0)
            if used >= policy.limit:
                return (
                    f"inventory {policy.name!r}: {used} of {policy.limit} presentations used "
                    + ("today" if since is not None else "in total")
                )
        elif pid is not None:
            since = st.now - policy.window if policy.window is not None else None
            if kind == "capping":
                used = history.count(pid, "presented", policy.per, key, since) + st.used.get(
                    (policy.name, key), 0
                )
                if used >= policy.limit:
                    return (
                        f"capping {policy.name!r}: {used} presentation(s) of {policy.per} "
                        f"{key!r} {_period(policy.window_text)}, limit {policy.limit}"
                    )
            else:
                seen = 0
                for event in policy.events:
                    seen += history.count(pid, event, policy.per, key, since)
                if seen >= policy.limit:
                    return (
                        f"suppression {policy.name!r}: {policy.per} {key!r} "
                        f"{'/'.join(policy.events)} {seen} time(s) {_period(policy.window_text)}"
                    )
    return None


def _period(window_text: str) -> str:
    return f"in the last {window_text}" if window_text else "ever"


def _propose(
    st: _State,
    pl: CompiledPlacement,
    cand: Candidate,
    score: float,
    selected: list[Proposition],
    *,
    fallback: bool,
    traces: list[Trace] | None,
) -> bool:
    """Render the offer and add it; False (and the error recorded) if its content fails."""
    offer = cand.offer
    variables = st.variables
    variables["offer"] = offer.namespace
    variables["placement"] = pl.variables
    try:
        content = render(cand.content, variables)
    except Exception as exc:  # a template error must never fail a decision
        st.errors.append(RuleFailure(offer.code, "content", f"{type(exc).__name__}: {exc}"))
        _trace(traces, offer.code, "render", f"content failed to render: {exc}", score)
        return False
    rank = len(selected) + 1
    selected.append(
        Proposition(
            pl.name,
            rank,
            offer.code,
            offer.name,
            offer.category,
            score,
            content,
            st.plan.tracking_code(),
            fallback,
        )
    )
    st.chosen.add(offer.code)
    used = st.used
    for budget in cand.budgets:
        used[budget] = used.get(budget, 0) + 1
    _trace(
        traces,
        offer.code,
        "fallback" if fallback else "selected",
        f"fallback for rank {rank}" if fallback else f"rank {rank}",
        score,
        selected=True,
    )
    return True


def _fill(
    st: _State,
    pl: CompiledPlacement,
    n: int,
    selected: list[Proposition],
    traces: list[Trace] | None,
) -> None:
    """Fill free slots from fallbacks: eligibility and policies apply, targeting does not."""
    categories, themes = st.request.categories, st.request.themes
    for cand in pl.fallbacks.get(st.audience, ()):
        if len(selected) >= n:
            return
        code = cand.offer.code
        if code in st.chosen:
            continue
        why = _inactive(cand, st.now) or _outside(cand, categories, themes)
        if why is None:
            failed = _ineligible(st, cand)
            why = _not_true(failed) if failed is not None else _blocked(st, cand)
        if why is not None:
            _trace(traces, code, "fallback", f"not used as a fallback: {why}")
            continue
        _propose(st, pl, cand, 0.0, selected, fallback=True, traces=traces)


def _render_default(st: _State, pl: CompiledPlacement) -> dict[str, str]:
    variables = st.variables
    variables.pop("offer", None)
    variables["placement"] = pl.variables
    try:
        return render(pl.default_content, variables)
    except Exception as exc:  # default content is answered regardless
        st.errors.append(RuleFailure("", "default content", f"{type(exc).__name__}: {exc}"))
        return {k: v if isinstance(v, str) else "" for k, v in pl.default_content}


def _trace(
    traces: list[Trace] | None,
    code: str,
    step: Step,
    reason: str,
    score: float | None = None,
    *,
    selected: bool = False,
) -> None:
    if traces is not None:
        traces.append(Trace(code, step, reason, score, selected))


def _describe_window(start: dt.datetime | None, end: dt.datetime | None) -> str:
    left = start.isoformat(sep=" ") if start else "always"
    right = end.isoformat(sep=" ") if end else "open-ended"
    return f"from {left} until {right}"
