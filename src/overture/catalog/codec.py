"""Object bodies as stored: YAML text, the catalog's own format.

YAML rather than JSON because it keeps dates and datetimes apart (an end *date* includes
its whole day); the dump leaves out defaults, as a person writing the catalog would.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def plain(model: BaseModel) -> dict[str, Any]:
    """The model as plain data (dates kept as dates), defaults left out."""
    data: dict[str, Any] = model.model_dump(mode="python", exclude_defaults=True)
    return data


def dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def encode(model: BaseModel) -> str:
    return dump(plain(model))


def yaml_canonical(data: Any) -> str:
    """YAML with sorted keys: equal data, equal text."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=True, allow_unicode=True, width=100)
