"""The one exception type the rule language raises.

A rule is written by a marketer, so every problem is reported with the line and column it
starts at and, where we can guess it, a hint on how to fix it. Callers that validate many
rules at once (a catalog) collect these and print them all.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem in a rule: where it is (1-based line and column) and what to do about it."""

    line: int
    column: int
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        text = f"{self.line}:{self.column}: {self.message}"
        return f"{text} — {self.hint}" if self.hint else text


class RuleError(Exception):
    """A rule that cannot be parsed or type-checked.

    It carries every problem found (type checking goes on after the first one), and
    exposes the first one's position directly because that is what most callers show.
    """

    def __init__(self, diagnostics: list[Diagnostic] | tuple[Diagnostic, ...]) -> None:
        if not diagnostics:
            raise ValueError("a RuleError needs at least one diagnostic")
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        super().__init__("; ".join(str(d) for d in self.diagnostics))

    @classmethod
    def at(cls, line: int, column: int, message: str, hint: str | None = None) -> RuleError:
        return cls([Diagnostic(line, column, message, hint)])

    @property
    def line(self) -> int:
        return self.diagnostics[0].line

    @property
    def column(self) -> int:
        return self.diagnostics[0].column

    @property
    def message(self) -> str:
        return self.diagnostics[0].message
