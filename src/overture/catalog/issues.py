"""Problems found in a catalog, each with where it is and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]
Path = tuple[str | int, ...]


def format_path(path: Path) -> str:
    """('offers', 12, 'eligibility') -> 'offers[12].eligibility'."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(catalog)"


@dataclass(frozen=True)
class Issue:
    """One problem. `rule_line`/`rule_column` point inside a rule or template text;
    `file`/`line` point at the YAML that holds it."""

    path: Path
    message: str
    hint: str | None = None
    severity: Severity = "error"
    rule_line: int | None = None
    rule_column: int | None = None
    file: str | None = None
    line: int | None = None

    @property
    def where(self) -> str:
        where = format_path(self.path)
        if self.rule_line is not None:
            where += f":{self.rule_line}:{self.rule_column}"
        return where

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}"
        return f"{text} — {self.hint}" if self.hint else text

    def to_dict(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "where": self.where,
            "message": self.message,
            "hint": self.hint,
            "file": self.file,
            "line": self.line,
        }


class CatalogError(Exception):
    """A catalog with errors; `issues` lists every one (and the warnings)."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        errors = [i for i in issues if i.severity == "error"]
        summary = "; ".join(str(i) for i in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        super().__init__(f"catalog has {len(errors)} error(s): {summary}{more}")
