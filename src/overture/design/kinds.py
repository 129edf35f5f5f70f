"""The kinds of catalog object the design environment stores and serves, one place."""

from __future__ import annotations

from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from overture.auth import Permission
from overture.catalog.model import (
    Audience,
    Category,
    Channel,
    FieldType,
    Identifier,
    Offer,
    Placement,
    Policy,
    Segment,
    Settings,
    TreatmentRule,
    Zone,
)


class CatalogSettings(BaseModel):
    """The catalog-wide part of a catalog: its name, settings, context schema and typed
    offer attributes (everything that is not a list of objects)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = "catalog"
    description: str = ""
    settings: Settings = Field(default_factory=Settings)
    context: dict[Identifier, FieldType] = Field(default_factory=dict)
    offer_attributes: dict[Identifier, FieldType] = Field(default_factory=dict)


@dataclass(frozen=True)
class Kind:
    section: str  # the catalog section and table: "treatment_rules"
    path: str  # the URL segment: "treatment-rules"
    singular: str  # "treatment rule"
    model: Any  # the pydantic model (or annotated union, for policies)
    write: Permission
    key: str = "name"

    @property
    def adapter(self) -> TypeAdapter[Any]:
        return _adapter(self.section)

    def validate(self, data: Any) -> BaseModel:
        model: BaseModel = self.adapter.validate_python(data)
        return model

    @property
    def fields(self) -> list[str]:
        """Top-level field names (of every member, for a union such as policies)."""
        models = [
            m for m in members(self.model) if isinstance(m, type) and issubclass(m, BaseModel)
        ]
        return list(dict.fromkeys(name for m in models for name in m.model_fields))

    def key_of(self, obj: BaseModel) -> str:
        value: str = getattr(obj, self.key)
        return value


NAMED_KINDS: tuple[Kind, ...] = (
    Kind("audiences", "audiences", "audience", Audience, Permission.SETUP),
    Kind("channels", "channels", "channel", Channel, Permission.SETUP),
    Kind("zones", "zones", "zone", Zone, Permission.SETUP),
    Kind("placements", "placements", "placement", Placement, Permission.SETUP),
    Kind("categories", "categories", "category", Category, Permission.AUTHOR),
    Kind("segments", "segments", "segment", Segment, Permission.AUTHOR),
    Kind("treatment_rules", "treatment-rules", "treatment rule", TreatmentRule, Permission.AUTHOR),
    Kind("policies", "policies", "policy", Policy, Permission.SETUP),
)
OFFERS = Kind("offers", "offers", "offer", Offer, Permission.AUTHOR, key="code")
BY_SECTION = {k.section: k for k in (*NAMED_KINDS, OFFERS)}

_ADAPTERS: dict[str, TypeAdapter[Any]] = {}


def members(tp: Any) -> list[Any]:
    """The classes in a type: itself, or the members of an (annotated) union."""
    if get_origin(tp) is Annotated:
        return members(get_args(tp)[0])
    if get_origin(tp) in (Union, UnionType):
        return [m for arg in get_args(tp) for m in members(arg)]
    return [tp]


def _adapter(section: str) -> TypeAdapter[Any]:
    if section not in _ADAPTERS:
        _ADAPTERS[section] = TypeAdapter(BY_SECTION[section].model)
    return _ADAPTERS[section]
