"""What the Schemathesis suites of both APIs (design and runtime) share."""

from __future__ import annotations

import re
from typing import Any

from schemathesis.core.failures import AcceptedNegativeData, Failure

_COMPONENT = re.compile(r"^\s*- (\w+): (.*)$", re.MULTILINE)


def not_really_negative(failure: Failure, case: Any) -> bool:
    """An ST201 whose only "violations" cannot reach the server as such: a query value
    mutated to another JSON type (null, an array) is sent as text a string parameter
    accepts; an extra query parameter whose value is an empty list is not sent at all; and
    the credentials header a case dropped is added back by the tests."""
    if not isinstance(failure, AcceptedNegativeData):
        return False
    declared = {
        p["name"] for p in case.operation.definition.raw.get("parameters", []) if p["in"] == "query"
    }
    sent = {name for name, value in (case.query or {}).items() if value != []}
    components = _COMPONENT.findall(failure.message)
    return bool(components) and all(
        (where == "query" and what.startswith("violates `type`"))
        or (where == "query" and "additionalProperties" in what and sent <= declared)
        or (where == "header" and ("Authorization" in what or "X-API-Key" in what))
        for where, what in components
    )
