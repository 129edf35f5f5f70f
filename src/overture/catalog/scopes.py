"""What each rule and template of a catalog can see, and the category-tree relations that
decide it. Validation checks rules against these schemas; the engine compiles with them.

Audiences: a category may name one (its subtree serves it); otherwise it inherits its
parent's, and a root category takes the catalog's first audience. An offer serves its
category's audience; a segment names its audience or takes the first one.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from overture.catalog.model import Catalog, Category, Offer, Placement, Segment, _Policy
from overture.rules import Schema, Type

OFFER_BUILTINS: Mapping[str, Type] = MappingProxyType(
    {
        "code": Type.STRING,
        "name": Type.STRING,
        "category": Type.STRING,
        "categories": Type.LIST,
        "themes": Type.LIST,
        "value": Type.FLOAT,
    }
)
"""`offer.*` fields every rule may read; declared offer_attributes come in addition."""

PLACEMENT_FIELDS = frozenset({"name", "channel", "zone"})


class Scopes:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.audiences = {a.name: a for a in catalog.audiences}
        self.default_audience = catalog.audiences[0].name if catalog.audiences else ""
        self.categories = {c.name: c for c in catalog.categories}
        self.offer_fields = {**OFFER_BUILTINS, **catalog.offer_attributes}

    # -- the category tree ---------------------------------------------------------
    def chain(self, name: str) -> list[Category]:
        """The category and its ancestors, root last (stops at a cycle or a missing parent)."""
        chain: list[Category] = []
        seen: set[str] = set()
        current: str | None = name
        while current is not None and current in self.categories and current not in seen:
            seen.add(current)
            chain.append(self.categories[current])
            current = self.categories[current].parent
        return chain

    def cycle_from(self, name: str) -> list[str] | None:
        """The cycle `name` is part of, in parent order, or None."""
        path: list[str] = []
        current: str | None = name
        while current is not None and current in self.categories:
            if current in path:
                cycle = path[path.index(current) :]
                return cycle if name in cycle else None
            path.append(current)
            current = self.categories[current].parent
        return None

    def themes(self, offer: Offer) -> frozenset[str]:
        """The offer's themes and those of its categories."""
        out = set(offer.themes)
        for cat in self.chain(offer.category):
            out.update(cat.themes)
        return frozenset(out)

    # -- audiences -----------------------------------------------------------------
    def category_audience(self, name: str | None) -> str:
        for cat in self.chain(name) if name else []:
            if cat.audience:
                return cat.audience
        return self.default_audience

    def offer_audience(self, offer: Offer) -> str:
        return self.category_audience(offer.category)

    def segment_audience(self, segment: Segment) -> str:
        return segment.audience or self.default_audience

    def segments_of(self, audience: str) -> frozenset[str]:
        return frozenset(
            s.name for s in self.catalog.segments if self.segment_audience(s) == audience
        )

    def policy_audiences(self, policy: _Policy) -> set[str]:
        """The audiences of the offers a policy can apply to (all, when it is unscoped)."""
        if not policy.categories and not policy.offers:
            return set(self.audiences) or {self.default_audience}
        out = {self.category_audience(c) for c in policy.categories}
        out.update(self.offer_audience(o) for o in self.catalog.offers if o.code in policy.offers)
        return out

    # -- schemas -------------------------------------------------------------------
    def rule_schema(
        self,
        audience: str,
        *,
        segments: bool = True,
        offer: bool = True,
        score: float | None = None,
    ) -> Schema:
        """The schema a rule is checked and compiled with. Segment rules see neither
        segments nor the offer; a treatment rule's score expression sees treatment.score."""
        a = self.audiences.get(audience)
        return Schema(
            profile=dict(a.fields) if a else {},
            context=dict(self.catalog.context),
            segments=self.segments_of(audience) if segments else None,
            offer=self.offer_fields if offer else None,
            constants={} if score is None else {"treatment.score": (Type.FLOAT, score)},
        )

    def template_fields(
        self, audience: str, offer: Offer | None, placement: Placement
    ) -> dict[str, frozenset[str] | None]:
        """The variables a template may read and their fields."""
        a = self.audiences.get(audience)
        fields: dict[str, frozenset[str] | None] = {
            "profile": frozenset(a.fields) if a else frozenset(),
            "context": frozenset(self.catalog.context),
            "segment": self.segments_of(audience),
            "placement": PLACEMENT_FIELDS,
        }
        if offer is not None:
            fields["offer"] = frozenset(self.offer_fields) | frozenset(offer.attributes)
        return fields

    # -- content -------------------------------------------------------------------
    @staticmethod
    def missing_required(offer: Offer, placement: Placement) -> list[str]:
        """Required content fields of the placement the offer does not fill."""
        content = offer.content_for(placement.name)
        return [
            name
            for name, f in placement.fields.items()
            if f.required and not str(content.get(name, "")).strip()
        ]
