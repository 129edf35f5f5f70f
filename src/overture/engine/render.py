"""Render an offer's content for a placement (see overture.catalog.templates)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import Template

from overture.catalog.templates import environment, is_template

Renderer = Template | str


def compile_content(content: Mapping[str, str], html: bool) -> tuple[tuple[str, Renderer], ...]:
    """Each field as static text or a compiled template (compiled once, at plan build)."""
    env = environment(html)
    return tuple((k, env.from_string(v) if is_template(v) else v) for k, v in content.items())


def render(
    fields: tuple[tuple[str, Renderer], ...], variables: Mapping[str, Any]
) -> dict[str, str]:
    """The rendered content; raises what the template raises (the engine counts it)."""
    return {k: v if isinstance(v, str) else v.render(variables) for k, v in fields}
