"""The offer catalog: its model, loading from YAML, and validation.

>>> from overture.catalog import validate_path
>>> report = validate_path("examples/bank")
>>> report.ok, len(report.catalog.offers) >= 30
(True, True)
"""

from overture.catalog.issues import CatalogError, Issue
from overture.catalog.loader import Source, read_source, read_text
from overture.catalog.model import (
    Audience,
    CappingPolicy,
    Catalog,
    Category,
    Channel,
    ChannelEvents,
    FilterPolicy,
    InventoryPolicy,
    Offer,
    Placement,
    Policy,
    Segment,
    Settings,
    SuppressionPolicy,
    TreatmentRule,
    Weight,
    Zone,
    parse_duration,
)
from overture.catalog.scopes import OFFER_BUILTINS, Scopes
from overture.catalog.validate import (
    Report,
    load_catalog,
    validate_catalog,
    validate_path,
    validate_source,
)

__all__ = [
    "OFFER_BUILTINS",
    "Audience",
    "CappingPolicy",
    "Catalog",
    "CatalogError",
    "Category",
    "Channel",
    "ChannelEvents",
    "FilterPolicy",
    "InventoryPolicy",
    "Issue",
    "Offer",
    "Placement",
    "Policy",
    "Report",
    "Scopes",
    "Segment",
    "Settings",
    "Source",
    "SuppressionPolicy",
    "TreatmentRule",
    "Weight",
    "Zone",
    "load_catalog",
    "parse_duration",
    "read_source",
    "read_text",
    "validate_catalog",
    "validate_path",
    "validate_source",
]
