"""Offer content templates: Jinja2's sandboxed environment, checked at validation.

Content is data, never code: templates run in Jinja2's immutable sandbox, which refuses
access to Python internals and any mutation. They see five variables, the same names
rules use: `profile`, `context`, `segment`, `offer` and `placement`. Validation parses
every template and checks each `profile.x` / `context.x` / `offer.x` / `segment.x` it
reads against the schemas, so a typo is caught before deployment, not at render time.

A missing value renders as an empty string; `{{ profile.first_name or 'there' }}` gives
a default. Placements with `render: html` escape values (a profile field cannot inject
markup); `render: text` leaves them as they are.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

from jinja2 import TemplateSyntaxError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from overture.rules.parser import suggest

VARIABLES = ("profile", "context", "segment", "offer", "placement")


@functools.cache
def environment(html: bool) -> ImmutableSandboxedEnvironment:
    """The template environment for a placement (html: values are escaped)."""
    return ImmutableSandboxedEnvironment(autoescape=html, keep_trailing_newline=True)


def is_template(text: str) -> bool:
    """Whether text needs rendering at all (most content is static)."""
    return "{{" in text or "{%" in text or "{#" in text


@dataclass(frozen=True)
class TemplateProblem:
    line: int
    column: int
    message: str
    hint: str | None = None


def check_template(text: str, fields: Mapping[str, frozenset[str] | None]) -> list[TemplateProblem]:
    """Problems in a template: syntax, unknown variables, unknown fields of a variable.

    `fields` maps each variable to the names it has (None: any name is accepted).
    """
    if not is_template(text):
        return []
    try:
        tree = environment(False).parse(text)
    except TemplateSyntaxError as exc:
        return [TemplateProblem(exc.lineno or 1, 1, f"template syntax: {exc.message}")]
    problems: list[TemplateProblem] = []
    locals_ = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    for name in tree.find_all(nodes.Name):
        if name.ctx != "load" or name.name in locals_ or name.name in fields:
            continue
        problems.append(
            TemplateProblem(
                name.lineno,
                1,
                f"unknown template variable {name.name!r}",
                suggest(name.name, list(fields)) or "variables: " + ", ".join(VARIABLES),
            )
        )
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        target = getattr(node, "node", None)
        if not (isinstance(target, nodes.Name) and target.name in fields):
            continue
        if isinstance(node, nodes.Getattr):
            attr = node.attr
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
        ):
            attr = node.arg.value
        else:
            continue
        known = fields[target.name]
        if known is not None and attr not in known:
            problems.append(
                TemplateProblem(
                    node.lineno,
                    1,
                    f"unknown field {target.name}.{attr}",
                    suggest(attr, sorted(known))
                    or f"{target.name} has: " + ", ".join(sorted(known)),
                )
            )
    return problems
