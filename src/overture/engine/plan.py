"""Compile a validated catalog into an immutable DecisionPlan.

Everything that does not depend on the request is done here, once: rules compiled to
closures, templates compiled, offers indexed by placement and audience with the weights,
treatment rules and policies that apply to each offer *on that placement* resolved, and
scope keys for capping precomputed. A plan is immutable; a new deployment builds a new
plan and the runtime swaps it in.
"""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
import threading
from collections.abc import Callable, Hashable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any, Literal

from overture.catalog.issues import CatalogError
from overture.catalog.model import (
    CappingPolicy,
    Catalog,
    FilterPolicy,
    InventoryPolicy,
    Offer,
    Placement,
    Policy,
    SuppressionPolicy,
    TreatmentRule,
    parse_duration,
    window_end,
    window_start,
)
from overture.catalog.scopes import Scopes
from overture.catalog.validate import validate_catalog
from overture.engine.compiled import (
    AudienceInfo,
    Candidate,
    CompiledOffer,
    CompiledPlacement,
    CompiledPolicy,
    CompiledRule,
    CompiledTreatment,
    CompiledWeight,
    Window,
    scoring_row,
)
from overture.engine.history import NO_HISTORY, History
from overture.engine.pipeline import Learner, decide, preview
from overture.engine.profile import Coercer
from overture.engine.render import compile_content
from overture.engine.request import Decision, DecisionRequest
from overture.rules import (
    NUMBER_RESULT,
    Env,
    Schema,
    Type,
    check,
    compile_predicate,
    compile_value,
    evaluate,
    parse,
)
from overture.rules import nodes as n

Compiler = Literal["closure", "interpreter"]
RULES_KEPT = 50_000
_KEPT: dict[Hashable, CompiledRule] = {}  # compiled rules, by compiler, text and schema
_KEPT_LOCK = threading.Lock()


def _schema_key(schema: Schema) -> Hashable:
    """What a rule's meaning depends on in its schema, as a value."""

    def items(names: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...] | None:
        return None if names is None else tuple(sorted((k, repr(v)) for k, v in names.items()))

    return (
        items(schema.profile),
        items(schema.context),
        schema.segments,
        items(schema.offer),
        items(schema.constants),
    )


class _Compiler:
    """Compiles rule texts with the schema they run with, sharing identical ones.

    Parsing and checking are nearly all of a plan's build (0.47 s for 1,000 offers), and a
    new deployment mostly repeats the rules of the one before it; compiled rules hold no
    state of their plan, so the process keeps the last RULES_KEPT of them, by text and
    schema, for the plans it builds next: a node swapping in a deployment that changed a
    few offers compiles only their rules."""

    def __init__(self, mode: Compiler) -> None:
        self.mode = mode
        # id(schema) -> (the schema, kept alive while its id is a key; its key in _KEPT)
        self.schemas: dict[int, tuple[Schema, Hashable]] = {}

    def rule(self, source: str, schema: Schema, value: bool = False) -> CompiledRule:
        known = self.schemas.get(id(schema))
        if known is None:
            known = self.schemas[id(schema)] = (schema, _schema_key(schema))
        key = (self.mode, source, known[1], value)
        with _KEPT_LOCK:  # plans are built in threads (a node's refresh, console pages)
            found = _KEPT.pop(key, None)
            if found is not None:
                _KEPT[key] = found  # the most recently used go last
                return found
        tree = check(parse(source), schema, NUMBER_RESULT if value else (Type.BOOL,))
        uses_offer = any(isinstance(x, n.Name) and x.namespace == "offer" for x in n.walk(tree))
        found = CompiledRule(source, self._compile(tree, value), uses_offer)
        with _KEPT_LOCK:
            _KEPT[key] = found
            while len(_KEPT) > RULES_KEPT:
                del _KEPT[next(iter(_KEPT))]  # the least recently used
        return found

    def _compile(self, tree: n.Node, value: bool) -> Callable[..., Any]:
        if self.mode == "closure":
            return compile_value(tree) if value else compile_predicate(tree)

        def interpreted(p: Any, c: Any, s: Any, o: Any, t: Any) -> Any:
            result = evaluate(tree, Env(t, p, c, s, o))
            return result if value else result is True

        return interpreted


def build_plan(
    catalog: Catalog,
    now: dt.datetime | None = None,
    *,
    compiler: Compiler = "closure",
    validated: bool = False,
) -> DecisionPlan:
    """Compile `catalog` for decisions from `now` on (offers already over are left out).

    `compiler="interpreter"` evaluates rules by walking their syntax tree instead of running
    compiled closures: the benchmark's baseline. The catalog is validated unless the
    caller says it already was (CatalogError if it has errors).
    """
    if not validated:
        report = validate_catalog(catalog)
        if not report.ok:
            raise CatalogError(report.issues)
    now = _naive(now or dt.datetime.now(dt.UTC))
    return _Builder(catalog, now, _Compiler(compiler)).build()


def _naive(t: dt.datetime) -> dt.datetime:
    return t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo else t


def _window(start: dt.date | None, end: dt.date | None) -> Window:
    return window_start(start), window_end(end)


def _intersect(windows: list[Window]) -> Window:
    starts = [s for s, _ in windows if s is not None]
    ends = [e for _, e in windows if e is not None]
    return (max(starts) if starts else None, min(ends) if ends else None)


class _Builder:
    def __init__(self, catalog: Catalog, now: dt.datetime, compiler: _Compiler) -> None:
        self.c = catalog
        self.now = now
        self.compiler = compiler
        self.scopes = Scopes(catalog)
        self.schemas: dict[str, Schema] = {}
        self.policy_categories = self._policy_categories()
        self.treatment_groups: dict[tuple[tuple[str, float], ...], int] = {}
        # compiled once per audience (a rule's compiled code depends on the field types)
        self.policies: dict[tuple[str, str], CompiledPolicy] = {}
        self.treatments: dict[tuple[str, str], CompiledTreatment] = {}

    def schema(self, audience: str) -> Schema:
        if audience not in self.schemas:
            self.schemas[audience] = self.scopes.rule_schema(audience)
        return self.schemas[audience]

    def build(self) -> DecisionPlan:
        offers = [o for o in (self.offer(x) for x in self.c.offers if x.status == "active") if o]
        by_code = {o.code: o for o in offers}
        placements = {p.name: self.placement(p, offers, by_code) for p in self.c.placements}
        audiences = {
            a.name: AudienceInfo(
                a.name,
                a.id_field,
                MappingProxyType(dict(a.fields)),
                {
                    s.name: self.compiler.rule(
                        s.rule, self.scopes.rule_schema(a.name, segments=False, offer=False)
                    )
                    for s in self.c.segments
                    if self.scopes.segment_audience(s) == a.name
                },
                coerce=Coercer(a.fields, "profile"),
            )
            for a in self.c.audiences
        }
        return DecisionPlan(
            catalog=self.c,
            built_at=self.now,
            placements=MappingProxyType(placements),
            audiences=MappingProxyType(audiences),
            default_audience=self.scopes.default_audience,
            coerce_context=Coercer(self.c.context, "context"),
            categories=frozenset(c.name for c in self.c.categories),
            default_score=self.c.settings.default_score,
            treatment_groups=tuple(self.treatment_groups),
        )

    # -- offers --------------------------------------------------------------------
    def offer(self, offer: Offer) -> CompiledOffer | None:
        chain = self.scopes.chain(offer.category)
        if not all(cat.enabled for cat in chain):
            return None
        window = _intersect(
            [_window(offer.start, offer.end), *(_window(c.start, c.end) for c in chain)]
        )
        if window[1] is not None and window[1] <= self.now:
            return None  # over before the plan serves
        audience = self.scopes.offer_audience(offer)
        schema = self.schema(audience)
        categories = tuple(c.name for c in chain)
        namespace = {
            "code": offer.code,
            "name": offer.name,
            "category": offer.category,
            "categories": list(categories),
            "themes": sorted(self.scopes.themes(offer)),
            "value": offer.value,
            **offer.attributes,
        }
        treatments = tuple(
            self.treatment(t, audience)
            for t in self.c.treatment_rules
            if offer.code in t.offers or (t.category and t.category in categories)
        )
        return CompiledOffer(
            code=offer.code,
            name=offer.name,
            category=offer.category,
            categories=categories,
            audience=audience,
            window=window,
            category_rules=tuple(
                (c.name, self.compiler.rule(c.eligibility, schema))
                for c in reversed(chain)
                if c.eligibility
            ),
            eligibility=self.compiler.rule(offer.eligibility, schema)
            if offer.eligibility
            else None,
            value=offer.value,
            themes=self.scopes.themes(offer),
            multipliers=tuple(
                (m.value, _window(m.start, m.end)) for c in chain for m in c.multipliers
            ),
            treatments=treatments,
            targeted=bool(treatments),
            namespace=MappingProxyType(namespace),
        )

    def treatment(self, rule: TreatmentRule, audience: str) -> CompiledTreatment:
        if (rule.name, audience) in self.treatments:
            return self.treatments[rule.name, audience]
        schema = self.schema(audience)
        score_schema = self.scopes.rule_schema(audience, score=rule.score)
        compiled = self.treatments[rule.name, audience] = CompiledTreatment(
            name=rule.name,
            segment=rule.segment,
            zone=rule.zone,
            score=rule.score,
            eligibility=self.compiler.rule(rule.eligibility, schema) if rule.eligibility else None,
            score_expression=self.compiler.rule(rule.score_expression, score_schema, value=True)
            if rule.score_expression
            else None,
        )
        return compiled

    # -- policies ------------------------------------------------------------------
    def _policy_categories(self) -> dict[str, frozenset[str]]:
        """Each policy's categories: its own and those that list it."""
        out = {p.name: set(p.categories) for p in self.c.policies}
        for cat in self.c.categories:
            for name in cat.policies:
                out.setdefault(name, set()).add(cat.name)
        return {k: frozenset(v) for k, v in out.items()}

    def policy(self, p: Policy, audience: str) -> CompiledPolicy:
        """The policy as it applies to offers of `audience` (cached)."""
        if (p.name, audience) not in self.policies:
            self.policies[p.name, audience] = self._policy(p, audience)
        return self.policies[p.name, audience]

    def _policy(self, p: Policy, audience: str) -> CompiledPolicy:
        if isinstance(p, FilterPolicy):
            rule = self.compiler.rule(p.rule, self.schema(audience))
            return CompiledPolicy(p.name, "filter", rule=rule)
        if isinstance(p, CappingPolicy):
            return CompiledPolicy(
                p.name,
                "capping",
                limit=p.limit,
                window=parse_duration(p.window),
                window_text=p.window,
                per=p.per,
            )
        if isinstance(p, SuppressionPolicy):
            events = ("accepted", "rejected") if p.after == "responded" else (p.after,)
            return CompiledPolicy(
                p.name,
                "suppression",
                limit=p.times,
                per=p.per,
                events=events,
                window=parse_duration(p.period) if p.period else None,
                window_text=p.period or "",
            )
        assert isinstance(p, InventoryPolicy)
        return CompiledPolicy(p.name, "inventory", limit=p.limit, per=p.per)

    def policies_for(
        self, offer: CompiledOffer, placement: Placement
    ) -> tuple[tuple[CompiledPolicy, str], ...]:
        out = []
        for p in self.c.policies:
            if p.channels and placement.channel not in p.channels:
                continue
            if p.placements and placement.name not in p.placements:
                continue
            cats = self.policy_categories.get(p.name, frozenset())
            if (
                (cats or p.offers)
                and offer.code not in p.offers
                and cats.isdisjoint(offer.categories)
            ):
                continue
            compiled = self.policy(p, offer.audience)
            key = offer.code
            if compiled.per == "category":
                key = next((c for c in offer.categories if c in cats), offer.category)
            elif compiled.per == "channel":
                key = placement.channel
            out.append((compiled, key))
        # cheap, exact checks first: filters, then history lookups
        order = {"filter": 0, "inventory": 1, "suppression": 2, "capping": 3}
        return tuple(sorted(out, key=lambda pk: order[pk[0].kind]))

    # -- placements ----------------------------------------------------------------
    def placement(
        self,
        p: Placement,
        offers: list[CompiledOffer],
        by_code: dict[str, CompiledOffer],
    ) -> CompiledPlacement:
        catalog_offers = {o.code: o for o in self.c.offers}
        candidates: dict[str, list[Candidate]] = {}
        made: dict[str, Candidate] = {}
        for offer in offers:
            source = catalog_offers[offer.code]
            if p.name not in source.placements or self.scopes.missing_required(source, p):
                continue  # not valid on this placement (validation warned about it)
            made[offer.code] = self.candidate(offer, source, p)
        # tie-break order: higher business value first, then code
        for order, code in enumerate(sorted(made, key=lambda c: (-made[c].offer.value, c))):
            made[code] = replace(made[code], order=order)
        for cand in made.values():
            candidates.setdefault(cand.offer.audience, []).append(cand)
        fallback_codes = [c for c in p.fallback_offers if c in made]
        fallback_categories = [
            o
            for o in offers
            if o.code in made
            and o.code not in fallback_codes
            and any(self.scopes.categories[c].fallback for c in o.categories)
        ]
        fallback_categories.sort(
            key=lambda o: (-(made[o.code].static_weight or 1.0), -o.value, o.code)
        )
        fallbacks: dict[str, list[Candidate]] = {}
        for code in [*fallback_codes, *(o.code for o in fallback_categories)]:
            fallbacks.setdefault(by_code[code].audience, []).append(made[code])
        return CompiledPlacement(
            name=p.name,
            channel=p.channel,
            zone=p.zone,
            max_offers=p.max_offers,
            max_per_category=p.max_per_category,
            candidates=MappingProxyType({a: tuple(c) for a, c in candidates.items()}),
            fixed=MappingProxyType(
                {
                    a: tuple(sorted((-c.fixed_score, c.order, c) for c in cs if c.fixed_score))
                    for a, cs in candidates.items()
                }
            ),
            dynamic=MappingProxyType(
                {
                    a: tuple(scoring_row(c) for c in cs if c.fixed_score is None)
                    for a, cs in candidates.items()
                }
            ),
            every=MappingProxyType(
                {a: tuple(scoring_row(c) for c in cs) for a, cs in candidates.items()}
            ),
            fallbacks=MappingProxyType({a: tuple(c) for a, c in fallbacks.items()}),
            default_content=compile_content(p.default_content, p.render == "html"),
            variables=MappingProxyType({"name": p.name, "channel": p.channel, "zone": p.zone}),
        )

    def candidate(self, offer: CompiledOffer, source: Offer, p: Placement) -> Candidate:
        schema = self.schema(offer.audience)
        weights = tuple(
            CompiledWeight(
                static=w.value if isinstance(w.value, (int, float)) else None,
                expression=self.compiler.rule(w.value, schema, value=True)
                if isinstance(w.value, str)
                else None,
                window=_window(w.start, w.end),
                rule=self.compiler.rule(w.rule, schema) if w.rule else None,
            )
            for w in source.weights
            if not w.placements or p.name in w.placements
        )
        static: float | None = None
        if not source.weights:
            static = 1.0
        elif (
            len(weights) == 1
            and weights[0].static is not None
            and weights[0].rule is None
            and weights[0].window == (None, None)
        ):
            static = weights[0].static
        content = source.content_for(p.name)
        if p.fields:
            content = {k: v for k, v in content.items() if k in p.fields}
        treatments = tuple(t for t in offer.treatments if t.zone is None or t.zone == p.zone)
        applicable = self.policies_for(offer, p)
        plain = [t for t in treatments if t.eligibility is None and t.score_expression is None]
        fixed = None
        if not offer.targeted and not offer.multipliers and static is not None and static > 0:
            fixed = static * self.c.settings.default_score
        return Candidate(
            offer=offer,
            static_weight=static,
            weights=weights,
            treatments=treatments,
            conditional_treatments=tuple(t for t in treatments if t not in plain),
            policies=applicable,
            budgets=tuple(
                (pol.name, key) for pol, key in applicable if pol.kind in ("capping", "inventory")
            ),
            content=compile_content(content, p.render == "html"),
            fixed_score=fixed,
            group_scored=(
                offer.targeted
                and static is not None
                and not offer.multipliers
                and len(plain) == len(treatments)
                and bool(plain)
            ),
            order=0,  # set once all candidates of the placement are known
            treatment_group=self._treatment_group(plain),
        )

    def _treatment_group(self, plain: list[CompiledTreatment]) -> int:
        if not plain:
            return -1
        key = tuple((t.segment, t.score) for t in sorted(plain, key=lambda t: -t.score))
        return self.treatment_groups.setdefault(key, len(self.treatment_groups))


class DecisionPlan:
    """A compiled catalog: call `decide(request, history)` (see overture.engine.pipeline)."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        built_at: dt.datetime,
        placements: Mapping[str, CompiledPlacement],
        audiences: Mapping[str, AudienceInfo],
        default_audience: str,
        coerce_context: Coercer,
        categories: frozenset[str],
        default_score: float,
        treatment_groups: tuple[tuple[tuple[str, float], ...], ...],
    ) -> None:
        self.catalog = catalog
        self.built_at = built_at
        self.placements = placements
        self.audiences = audiences
        self.default_audience = default_audience
        self.coerce_context = coerce_context
        self.categories = categories
        self.default_score = default_score
        self.treatment_groups = treatment_groups  # by Candidate.treatment_group
        self._tracking_prefix = secrets.token_hex(6)
        self._tracking_counter = itertools.count(1)

    def tracking_code(self) -> str:
        """A code unique to this proposition: a random per-plan prefix and a counter."""
        return f"{self._tracking_prefix}.{next(self._tracking_counter):x}"

    def decide(
        self,
        request: DecisionRequest,
        history: History | None = None,
        learner: Learner | None = None,
    ) -> Decision:
        """Run the decision pipeline for `request` (see overture.engine.pipeline)."""
        return decide(self, request, history or NO_HISTORY, learner)

    def preview(self, request: DecisionRequest, offer_code: str) -> dict[str, Any]:
        """One offer's content on the requested placements for the request's profile,
        whatever its eligibility (overture.engine.pipeline.preview)."""
        return preview(self, request, offer_code)
