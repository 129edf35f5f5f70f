"""Validate a catalog and report every problem at once, each with its location and a hint.

Two passes. Structural: each object is checked by its pydantic model on its own, so a
broken offer does not hide the problems of the others. Semantic: references, duplicates,
cycles in the category tree, every rule type-checked against the schema it runs with,
every template parsed and its fields checked, content fields against placements. A name
whose object was already reported broken is not reported again as a dangling reference.

Errors block loading; warnings (an offer missing a required content field, which makes it
not valid on that placement) are reported and the catalog still loads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from overture.catalog import scopes
from overture.catalog.issues import CatalogError, Issue, Path, Severity
from overture.catalog.loader import Source, read_source
from overture.catalog.model import (
    SECTIONS,
    Catalog,
    FieldType,
    FilterPolicy,
    Identifier,
    Offer,
    Policy,
    Settings,
)
from overture.catalog.templates import ValidationBudget, check_template
from overture.rules import NUMBER_RESULT, RuleError, Schema, Type, check, parse
from overture.rules.checker import BOOL_RESULT, literal_type
from overture.rules.parser import suggest

_POLICY = TypeAdapter(Policy)
_FIELD_TYPES = TypeAdapter(dict[Identifier, FieldType])
_POLICY_KINDS = ("filter", "capping", "suppression", "inventory")
_MODELS: tuple[type[BaseModel], ...] = (*SECTIONS.values(), Settings, Catalog)
_KNOWN_FIELDS = sorted(
    {f for m in _MODELS for f in m.model_fields}
    | {
        "weight",
        "kind",
        "rule",
        "limit",
        "window",
        "per",
        "after",
        "times",
        "period",
        "required",
        "value",
    }
)


@dataclass
class Report:
    """The outcome of validation: the catalog (None if there are errors) and every issue."""

    catalog: Catalog | None
    issues: list[Issue] = field(default_factory=list)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors


def validate_path(path: str | FsPath) -> Report:
    return validate_source(read_source(path))


def load_catalog(path: str | FsPath) -> Catalog:
    """The validated catalog at `path`; CatalogError listing every problem otherwise."""
    report = validate_path(path)
    if report.catalog is None:
        raise CatalogError(report.issues)
    return report.catalog


def validate_source(source: Source) -> Report:
    issues = list(source.issues)
    catalog, positions, broken = _structural(source, issues)
    issues.extend(_Semantic(catalog, source, positions, broken).run())
    issues.sort(key=lambda i: (i.severity != "error", i.file or "", i.line or 0))
    ok = not any(i.severity == "error" for i in issues)
    return Report(catalog if ok else None, issues)


def validate_catalog(catalog: Catalog) -> Report:
    """Semantic validation of a catalog built in code (its objects are already well formed)."""
    positions = {
        id(item): i
        for section in (*SECTIONS, "policies")
        for i, item in enumerate(getattr(catalog, section))
    }
    issues = _Semantic(catalog, Source(), positions, {}).run()
    ok = not any(i.severity == "error" for i in issues)
    return Report(catalog if ok else None, issues)


# -- structural pass -------------------------------------------------------------------------
def _structural(
    source: Source, issues: list[Issue]
) -> tuple[Catalog, dict[int, int], dict[str, set[str]]]:
    data = source.data
    built: dict[str, Any] = {}
    positions: dict[int, int] = {}
    broken: dict[str, set[str]] = {}
    for section, model in [*SECTIONS.items(), ("policies", None)]:
        items = []
        raws = data.get(section) or []
        if not isinstance(raws, list):
            issues.append(
                _located(
                    source,
                    (section,),
                    f"{section} must be a list (items start with '- '), not {type(raws).__name__}",
                )
            )
            raws = []
        for i, raw in enumerate(raws):
            try:
                item = _POLICY.validate_python(raw) if model is None else model.model_validate(raw)
            except ValidationError as exc:
                issues.extend(_pydantic_issues(exc, (section, i), source, strip_tag=model is None))
                name = raw.get("code", raw.get("name")) if isinstance(raw, dict) else None
                if isinstance(name, str):
                    broken.setdefault(section, set()).add(name)
                continue
            positions[id(item)] = i
            items.append(item)
        built[section] = items
    for key, adapter in (
        ("context", _FIELD_TYPES),
        ("offer_attributes", _FIELD_TYPES),
        ("settings", TypeAdapter(Settings)),
    ):
        if key in data:
            try:
                built[key] = adapter.validate_python(data[key] or {})
            except ValidationError as exc:
                issues.extend(_pydantic_issues(exc, (key,), source))
    for key in ("name", "description"):
        if key in data:
            if isinstance(data[key], str):
                built[key] = data[key]
            else:
                issues.append(_located(source, (key,), f"{key} must be text"))
    return Catalog.model_validate(built), positions, broken


def _pydantic_issues(
    exc: ValidationError, prefix: Path, source: Source, strip_tag: bool = False
) -> list[Issue]:
    out = []
    seen: set[Path] = set()
    for err in exc.errors():
        # pydantic names the branches of a union (`value: 2 or "a rule"`) in the location,
        # "function-before[_not_a_bool(), float]" and "str": the field is what the author
        # wrote, and its first branch's message says what was wrong
        raw = tuple(err["loc"])
        loc = tuple(p for p in raw if not (isinstance(p, str) and _BRANCH.match(p)))
        if strip_tag and loc and loc[0] in _POLICY_KINDS:
            loc = loc[1:]
        path = (*prefix, *loc)
        if len(loc) == len(raw) and loc and loc[-1] in _BRANCH_TYPES and path[:-1] in seen:
            continue  # another branch of a field already reported
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            path = (*path, "kind")
        seen.add(path)
        message, hint = explain_error(err)
        out.append(_located(source, path, message, hint))
    return out


_BRANCH = re.compile(r"function-(before|after|wrap|plain)\[")
_BRANCH_TYPES = ("str", "float", "int", "bool")


def explain_error(err: Any) -> tuple[str, str | None]:
    """A pydantic error as (message, hint), in the words `overture validate` uses."""
    kind, loc, value = err["type"], err["loc"], err.get("input")
    name = str(loc[-1]) if loc else "value"
    if kind == "extra_forbidden":
        return f"unknown field {name!r}", suggest(name, _KNOWN_FIELDS)
    if kind == "missing":
        return f"missing field {name!r}", None
    if kind == "finite_number":
        return f"expected a finite number, not {value!r}", None
    if kind == "string_pattern_mismatch":
        pattern = err.get("ctx", {}).get("pattern", "")
        allowed = (
            "letters, digits and _"
            if "_]{" in pattern and "-" not in pattern
            else "letters, digits, '_', '-' and '.'"
        )
        return (
            f"{value!r} is not a valid name",
            f"use {allowed}, starting with a letter; 64 at most",
        )
    if kind == "union_tag_invalid":
        tag = str(err.get("ctx", {}).get("tag", ""))
        return (
            f"unknown policy kind {tag!r}",
            suggest(tag, _POLICY_KINDS) or "kinds: " + ", ".join(_POLICY_KINDS),
        )
    if kind == "union_tag_not_found":
        return "missing field 'kind'", "kinds: " + ", ".join(_POLICY_KINDS)
    message = str(err["msg"]).removeprefix("Value error, ")
    if kind in ("model_type", "dict_type", "list_type"):
        return f"{message} (got {type(value).__name__})", None
    return message, None


def _located(
    source: Source,
    path: Path,
    message: str,
    hint: str | None = None,
    *,
    severity: Severity = "error",
    rule_pos: tuple[int, int] | None = None,
) -> Issue:
    loc = source.locate(path)
    line = loc.line if loc else None
    if loc and rule_pos:
        line = loc.line + rule_pos[0] - (0 if loc.block else 1)
    return Issue(
        path,
        message,
        hint,
        severity,
        rule_line=rule_pos[0] if rule_pos else None,
        rule_column=rule_pos[1] if rule_pos else None,
        file=loc.file if loc else None,
        line=line,
    )


# -- semantic pass ---------------------------------------------------------------------------
class _Semantic:
    def __init__(
        self,
        catalog: Catalog,
        source: Source,
        positions: dict[int, int],
        broken: dict[str, set[str]],
    ) -> None:
        self.c = catalog
        self.source = source
        self.positions = positions
        self.broken = broken
        self.issues: list[Issue] = []
        self._reported: set[Issue] = set()
        self.scopes = scopes.Scopes(catalog)
        # one budget for the templates' constant parts of the whole catalog: a catalog of
        # many costly templates cannot hold validation (and the design API) for long
        self.template_budget = ValidationBudget()

    def run(self) -> list[Issue]:
        self.duplicates()
        self.audiences()
        self.placements()
        self.categories()
        self.segments()
        self.offers()
        self.treatment_rules()
        self.policies()
        return self.issues

    # -- helpers -------------------------------------------------------------------
    def path(self, section: str, item: object, *rest: str | int) -> Path:
        return (section, self.positions.get(id(item), 0), *rest)

    def add(
        self,
        path: Path,
        message: str,
        hint: str | None = None,
        severity: Severity = "error",
        rule_pos: tuple[int, int] | None = None,
    ) -> None:
        issue = _located(self.source, path, message, hint, severity=severity, rule_pos=rule_pos)
        # an offer's content is checked once per placement it is on: a problem that does
        # not depend on the placement (a syntax error, a template nested too deeply) is
        # told once, not once per placement
        if issue not in self._reported:
            self._reported.add(issue)
            self.issues.append(issue)

    def ref(
        self, path: Path, kind: str, section: str, name: str | None, known: Iterable[str]
    ) -> bool:
        """Check that `name` names an object of `section`; report it otherwise."""
        if name is None:
            return True
        names = set(known)
        if name in names or name in self.broken.get(section, set()):
            return name in names
        hint = suggest(name, names) or (
            f"declare it under {section}:"
            if not names
            else f"known: {', '.join(sorted(names)[:8])}"
        )
        self.add(path, f"unknown {kind} {name!r}", hint)
        return False

    def rule(
        self, path: Path, text: str, schema: Schema, result: tuple[Type, ...] = BOOL_RESULT
    ) -> None:
        try:
            check(parse(text), schema, result)
        except RuleError as exc:
            for d in exc.diagnostics:
                self.add(path, d.message, d.hint, rule_pos=(d.line, d.column))

    def template(self, path: Path, text: str, fields: dict[str, frozenset[str] | None]) -> None:
        for p in check_template(text, fields, self.template_budget):
            self.add(path, p.message, p.hint, rule_pos=(p.line, p.column))

    # -- checks --------------------------------------------------------------------
    def duplicates(self) -> None:
        for section in (*SECTIONS, "policies"):
            seen: dict[str, object] = {}
            for item in getattr(self.c, section):
                key = getattr(item, "code", None) or item.name
                if key.lower() in seen:
                    first = self.positions.get(id(seen[key.lower()]), 0)
                    what = "code" if section == "offers" else "name"
                    self.add(
                        self.path(section, item, what),
                        f"duplicate {what} {key!r}",
                        f"also {section}[{first}]; names are compared without case",
                    )
                else:
                    seen[key.lower()] = item

    def audiences(self) -> None:
        if not self.c.audiences and "audiences" not in self.broken:
            self.add(
                ("audiences",),
                "a catalog needs at least one audience",
                "declare who decisions are for: audiences: [{name: customer, id_field: ...}]",
            )
        for a in self.c.audiences:
            if a.id_field not in a.fields:
                self.add(
                    self.path("audiences", a, "id_field"),
                    f"id field {a.id_field!r} is not among the audience's fields",
                    "declare it under fields:",
                )
        for name in self.c.offer_attributes:
            if name in scopes.OFFER_BUILTINS:
                self.add(
                    ("offer_attributes", name),
                    f"offer attribute {name!r} hides the built-in offer.{name}",
                    "rename the attribute",
                )

    def placements(self) -> None:
        offers = {o.code: o for o in self.c.offers}
        for p in self.c.placements:
            self.ref(
                self.path("placements", p, "channel"),
                "channel",
                "channels",
                p.channel,
                (c.name for c in self.c.channels),
            )
            self.ref(
                self.path("placements", p, "zone"),
                "zone",
                "zones",
                p.zone,
                (z.name for z in self.c.zones),
            )
            for i, code in enumerate(p.fallback_offers):
                path = self.path("placements", p, "fallback_offers", i)
                if self.ref(path, "offer", "offers", code, offers):
                    missing = self.scopes.missing_required(offers[code], p)
                    if p.name not in offers[code].placements or missing:
                        why = (
                            f"missing {', '.join(missing)}"
                            if p.name in offers[code].placements
                            else "the offer does not list this placement"
                        )
                        self.add(path, f"fallback offer {code!r} is not valid on {p.name!r}: {why}")
            fields = self.scopes.template_fields(self.scopes.default_audience, None, p)
            for key, text in p.default_content.items():
                if p.fields and key not in p.fields:
                    self.add(
                        self.path("placements", p, "default_content", key),
                        f"{key!r} is not a content field of this placement",
                        suggest(key, list(p.fields)),
                    )
                self.template(self.path("placements", p, "default_content", key), text, fields)

    def categories(self) -> None:
        names = {c.name for c in self.c.categories}
        reported_cycles: set[frozenset[str]] = set()
        for cat in self.c.categories:
            path = self.path("categories", cat)
            self.ref((*path, "parent"), "parent category", "categories", cat.parent, names)
            if cat.audience is not None and self.ref(
                (*path, "audience"), "audience", "audiences", cat.audience, self.scopes.audiences
            ):
                parent_audience = self.scopes.category_audience(cat.parent) if cat.parent else None
                if parent_audience and parent_audience != cat.audience and cat.parent in names:
                    self.add(
                        (*path, "audience"),
                        f"audience {cat.audience!r} differs from the "
                        f"parent's ({parent_audience!r})",
                        "a subtree serves one audience",
                    )
            for i, pol in enumerate(cat.policies):
                self.ref(
                    (*path, "policies", i),
                    "policy",
                    "policies",
                    pol,
                    (p.name for p in self.c.policies),
                )
            cycle = self.scopes.cycle_from(cat.name)
            if cycle and frozenset(cycle) not in reported_cycles:
                reported_cycles.add(frozenset(cycle))
                self.add(
                    (*path, "parent"),
                    "cycle in the category tree: " + " → ".join([*cycle, cycle[0]]),
                    "a category cannot be its own ancestor",
                )
            if cat.eligibility:
                schema = self.scopes.rule_schema(self.scopes.category_audience(cat.name))
                self.rule((*path, "eligibility"), cat.eligibility, schema)

    def segments(self) -> None:
        for seg in self.c.segments:
            path = self.path("segments", seg)
            if self.ref(
                (*path, "audience"), "audience", "audiences", seg.audience, self.scopes.audiences
            ):
                schema = self.scopes.rule_schema(
                    self.scopes.segment_audience(seg), segments=False, offer=False
                )
                self.rule((*path, "rule"), seg.rule, schema)

    def offers(self) -> None:
        placements = {p.name: p for p in self.c.placements}
        for offer in self.c.offers:
            path = self.path("offers", offer)
            self.ref(
                (*path, "category"),
                "category",
                "categories",
                offer.category,
                (c.name for c in self.c.categories),
            )
            audience = self.scopes.offer_audience(offer)
            schema = self.scopes.rule_schema(audience)
            if offer.eligibility:
                self.rule((*path, "eligibility"), offer.eligibility, schema)
            self.offer_weights(offer, path, schema)
            self.offer_attributes(offer, path)
            if not offer.placements and offer.status == "active":
                self.add(
                    (*path, "placements"),
                    f"offer {offer.code!r} is valid on no placement",
                    "list the placements it may appear on",
                    severity="warning",
                )
            for name in offer.placements:
                if self.ref(
                    (*path, "placements", name), "placement", "placements", name, placements
                ):
                    self.offer_content(offer, placements[name], path, audience)

    def offer_weights(self, offer: Offer, path: Path, schema: Schema) -> None:
        for i, w in enumerate(offer.weights):
            wpath = (*path, "weights", i)
            if isinstance(w.value, str):
                self.rule((*wpath, "value"), w.value, schema, NUMBER_RESULT)
            elif w.value < 0:
                self.add((*wpath, "value"), "a weight cannot be negative", "0 makes it ineligible")
            if w.rule:
                self.rule((*wpath, "rule"), w.rule, schema)
            for j, p in enumerate(w.placements):
                if p not in offer.placements:
                    self.add(
                        (*wpath, "placements", j),
                        f"weight for placement {p!r}, which the offer is not valid on",
                        "list it under the offer's placements",
                    )

    def offer_attributes(self, offer: Offer, path: Path) -> None:
        for name, value in offer.attributes.items():
            declared = self.c.offer_attributes.get(name)
            if declared is None:
                continue
            actual = Type.LIST if isinstance(value, list) else literal_type(value)
            if actual != declared and not (declared == Type.FLOAT and actual == Type.INT):
                self.add(
                    (*path, "attributes", name),
                    f"attribute {name!r} is declared {declared} but given {actual}: {value!r}",
                )

    def offer_content(self, offer: Offer, placement: Any, path: Path, audience: str) -> None:
        content = offer.content_for(placement.name)
        overrides = offer.placements[placement.name]
        fields = self.scopes.template_fields(audience, offer, placement)
        for key, text in content.items():
            where = (
                (*path, "placements", placement.name, key)
                if key in overrides
                else (*path, "content", key)
            )
            if placement.fields and key not in placement.fields:
                if key in overrides:  # a common field unused here is fine; an override is a typo
                    self.add(
                        where,
                        f"{key!r} is not a content field of placement {placement.name!r}",
                        suggest(key, list(placement.fields))
                        or "fields: " + ", ".join(placement.fields),
                    )
                continue
            self.template(where, text, fields)
        missing = self.scopes.missing_required(offer, placement)
        if missing and offer.status == "active":
            self.add(
                (*path, "placements", placement.name),
                f"offer {offer.code!r} is not valid on placement {placement.name!r}: "
                f"required field {', '.join(repr(m) for m in missing)} missing",
                f"add it under content: or placements: {placement.name}:",
                severity="warning",
            )
        if (
            placement.fields
            and not any(k in placement.fields for k in offer.content)
            and not overrides
            and offer.content
        ):
            self.add(
                (*path, "content"),
                f"none of the offer's content fields is used by placement {placement.name!r}",
                "fields: " + ", ".join(placement.fields),
                severity="warning",
            )

    def treatment_rules(self) -> None:
        segments = {s.name: s for s in self.c.segments}
        offers = {o.code for o in self.c.offers}
        for rule in self.c.treatment_rules:
            path = self.path("treatment_rules", rule)
            self.ref((*path, "segment"), "segment", "segments", rule.segment, segments)
            for i, code in enumerate(rule.offers):
                self.ref((*path, "offers", i), "offer", "offers", code, offers)
            self.ref(
                (*path, "category"),
                "category",
                "categories",
                rule.category,
                (c.name for c in self.c.categories),
            )
            self.ref((*path, "zone"), "zone", "zones", rule.zone, (z.name for z in self.c.zones))
            audience = (
                self.scopes.segment_audience(segments[rule.segment])
                if rule.segment in segments
                else self.scopes.default_audience
            )
            if rule.eligibility:
                self.rule(
                    (*path, "eligibility"), rule.eligibility, self.scopes.rule_schema(audience)
                )
            if rule.score_expression:
                schema = self.scopes.rule_schema(audience, score=rule.score)
                self.rule((*path, "score_expression"), rule.score_expression, schema, NUMBER_RESULT)

    def policies(self) -> None:
        for pol in self.c.policies:
            path = self.path("policies", pol)
            for key, kind, section, known in (
                ("channels", "channel", "channels", [c.name for c in self.c.channels]),
                ("placements", "placement", "placements", [p.name for p in self.c.placements]),
                ("categories", "category", "categories", [c.name for c in self.c.categories]),
                ("offers", "offer", "offers", [o.code for o in self.c.offers]),
            ):
                for i, name in enumerate(getattr(pol, key)):
                    self.ref((*path, key, i), kind, section, name, known)
            if isinstance(pol, FilterPolicy):
                for audience in self.scopes.policy_audiences(pol):
                    self.rule((*path, "rule"), pol.rule, self.scopes.rule_schema(audience))
