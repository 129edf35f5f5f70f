"""The Interact servlet's contract: requests and answers written from Interact's wire format
(tests/runtime/interact_contract/*.json, their notation in its README.md), run against the
real ASGI app on the demo deployment. Every command the servlet implements has a file."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from overture.runtime import servlet
from tests.runtime.test_servlet import SERVLET

CONTRACTS = Path(__file__).parent / "interact_contract"
FILES = sorted(CONTRACTS.glob("*.json"))
CAPTURE = re.compile(r"\{\{(\w+)\}\}")
TYPES: dict[str, Any] = {
    "<string>": lambda v: isinstance(v, str),
    "<int>": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "<number>": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "<bool>": lambda v: isinstance(v, bool),
    "<any>": lambda v: True,
    "<string|null>": lambda v: v is None or isinstance(v, str),
}


class Mismatch(AssertionError):
    pass


def match(expected: Any, actual: Any, bound: dict[str, Any], where: str = "$") -> None:
    """Hold `actual` to `expected` in the notation of interact_contract/README.md, binding
    the `{{name}}` placeholders in `bound`."""
    if isinstance(expected, str):
        captured = CAPTURE.fullmatch(expected)
        if captured:
            name = captured.group(1)
            if name not in bound:
                if actual is None:
                    raise Mismatch(f"{where}: {expected} is null")
                bound[name] = actual
            elif bound[name] != actual:
                raise Mismatch(f"{where}: {actual!r} is not {expected} ({bound[name]!r})")
            return
        if expected in TYPES:
            if not TYPES[expected](actual):
                raise Mismatch(f"{where}: {actual!r} is no {expected}")
            return
        if expected.startswith("<re:") and expected.endswith(">"):
            if not isinstance(actual, str) or not re.fullmatch(expected[4:-1], actual, re.S):
                raise Mismatch(f"{where}: {actual!r} does not match {expected}")
            return
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or set(actual) != set(expected):
            keys = sorted(actual) if isinstance(actual, dict) else actual
            raise Mismatch(f"{where}: {keys!r} is not an object of keys {sorted(expected)}")
        for key, value in expected.items():
            match(value, actual[key], bound, f"{where}.{key}")
        return
    if isinstance(expected, list):
        if not isinstance(actual, list):
            raise Mismatch(f"{where}: {actual!r} is not a list")
        head = expected[0] if expected else None
        if head in ("<each>", "<each*>"):
            if head == "<each>" and not actual:
                raise Mismatch(f"{where}: an empty list")
            for i, item in enumerate(actual):
                match(expected[1], item, bound, f"{where}[{i}]")
            return
        if head == "<contains>":
            left = list(enumerate(actual))
            for pattern in expected[1:]:
                for j, (i, item) in enumerate(left):
                    try:
                        match(pattern, item, dict(bound), f"{where}[{i}]")
                    except Mismatch:
                        continue
                    match(pattern, item, bound, f"{where}[{i}]")
                    del left[j]
                    break
                else:
                    raise Mismatch(f"{where}: no item matches {pattern!r} in {actual!r}")
            return
        if len(actual) != len(expected):
            raise Mismatch(f"{where}: {len(actual)} items, not {len(expected)}: {actual!r}")
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            match(e, a, bound, f"{where}[{i}]")
        return
    if type(actual) is not type(expected) or actual != expected:
        raise Mismatch(f"{where}: {actual!r} is not {expected!r}")


def fill(request: Any, bound: dict[str, Any]) -> Any:
    """The request with the values bound so far in place of their `{{name}}`."""
    if isinstance(request, str):
        captured = CAPTURE.fullmatch(request)
        if captured:
            return bound[captured.group(1)]
        return request
    if isinstance(request, dict):
        return {k: fill(v, bound) for k, v in request.items()}
    if isinstance(request, list):
        return [fill(v, bound) for v in request]
    return request


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_the_servlet_keeps_its_contract(api: TestClient, path: Path) -> None:
    contract = json.loads(path.read_text())
    bound: dict[str, Any] = {}
    for i, step in enumerate(contract["steps"]):
        body = fill(step["request"], bound)
        answer = api.post(SERVLET, json=body)
        assert answer.status_code == step.get("http_status", 200), (i, answer.text)
        try:
            match(step["response"], answer.json(), bound)
        except Mismatch as exc:
            raise AssertionError(f"{path.name}, step {i}: {exc}\n{answer.text}") from None


def test_every_command_has_a_contract() -> None:
    sent = set()
    for path in FILES:
        for step in json.loads(path.read_text())["steps"]:
            request = step["request"]
            commands = request.get("commands", [request])
            sent |= {c.get("action") for c in commands if isinstance(c, dict)}
    missing = set(servlet._NAMES) - sent
    assert not missing, f"no contract sends {sorted(missing)}"
    # each command's own file, named after it (executeBatch: the batch body itself)
    stems = {p.stem for p in FILES}
    for name in [*servlet._NAMES, "executeBatch"]:
        assert re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() in stems, name


def test_the_matcher_refuses_what_it_should() -> None:
    bound: dict[str, Any] = {}
    match({"a": "{{x}}", "b": ["<each>", "<int>"]}, {"a": "s-1", "b": [1, 2]}, bound)
    assert bound == {"x": "s-1"}
    for expected, actual in [
        ({"a": "{{x}}"}, {"a": "s-2"}),  # bound to another value
        ({"a": 1}, {"a": 1, "b": 2}),  # another key
        (["<each>", "<int>"], []),
        (["<each>", "<int>"], [1, True]),
        (["<contains>", 1, 1], [1, 2]),  # two items matching 1
        ("<re:ab>", "abc"),  # in full
        (1, 1.0),
        (0, False),
        ("<number>", None),
    ]:
        with pytest.raises(Mismatch):
            match(expected, actual, bound)
