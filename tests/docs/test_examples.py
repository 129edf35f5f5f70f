"""The documentation's examples run and say what the documentation says."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docs_examples_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_rules_example() -> None:
    result = _load("rules_example").main()
    assert result["eligible"] is True and result["unknown age"] is False
    assert str(result["duckdb"]).startswith('("age" >= 18) AND')
    assert result["error"] == "1:1: unknown profile field 'agee' — did you mean 'age'?"


def test_engine_example() -> None:
    result = _load("engine_example").main()
    assert result["first"] == ["ACC-STUDENT", "CC-STUDENT"]
    assert str(result["greeting"]).startswith("Ana, no monthly fee")
    assert "ACC-STUDENT" not in result["after two rejections"]


def test_runtime_example() -> None:
    result = _load("runtime_example").main()
    assert result["first"] == "ACC-STUDENT"
    assert result["event"] == ("stored", "accepted")
    assert result["later"] != "ACC-STUDENT"


def test_the_readme_python_snippet_runs() -> None:
    readme = (EXAMPLES.parents[1] / "README.md").read_text()
    snippet = readme.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {}
    exec(compile(snippet, "README.md", "exec"), namespace)


def test_design_example() -> None:
    result = _load("design_example").main()
    assert result["imported offers"] == 36
    status, etag, state = result["created"]
    assert status == 201 and etag.startswith('"') and state == "draft"
    assert result["approved"] == "approved" and result["edited"] == "pending"
    assert result["stale"][0] == 409
    assert result["wrong"] == (422, "unknown profile field 'agee'")
    assert result["plan adds"] == 37 and result["deployed"] == (1, 1)
    assert result["production first"][0] == 409
    assert "has not run on staging" in result["production first"][1]


def test_batch_example() -> None:
    result = _load("batch_example").main()
    assert result["C0000007"] == [
        (1, "LOAN-EV", 65.0),
        (2, "INS-LIFE", 50.0),
        (3, "SAV-FIXED-1Y", 50.0),
    ]
    assert sum(result["per_offer"].values()) == result["rows"] > 5_000
