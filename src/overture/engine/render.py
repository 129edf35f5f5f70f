"""Render an offer's content for a placement (see overture.catalog.templates).

Templates are compiled once, at plan build. At decision time the engine prepares one
variables mapping per request (with the environment's globals, so Jinja need not copy
them) and renders each template's compiled function over it: a third of the cost of
`Template.render`, which builds a fresh context per call.

A template's cost is bounded (overture.catalog.templates: MAX_OUTPUT, MAX_STEPS, …): the
environment checks what it builds and charges its work while it renders, and a rendered
field longer than MAX_OUTPUT is refused here. Going over a limit raises
TemplateLimitError, which fails the render as any template error does.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from jinja2 import Template

from overture.catalog.templates import MAX_OUTPUT, TemplateLimitError, environment, is_template

Renderer = Template | str


def compile_content(content: Mapping[str, str], html: bool) -> tuple[tuple[str, Renderer], ...]:
    """Each field as static text or a compiled template."""
    return tuple((k, _template(v, html) if is_template(v) else v) for k, v in content.items())


@functools.lru_cache(maxsize=4096)
def _template(text: str, html: bool) -> Template:
    """Compiled templates are immutable: offers with the same text share one."""
    template = environment(html).from_string(text)
    template.overture_source = text  # type: ignore[attr-defined]  # read by source_of()
    return template


def source_of(renderer: Renderer) -> str:
    """The text a field was compiled from (batch rendering reads which fields it uses)."""
    if isinstance(renderer, str):
        return renderer
    source: str = renderer.overture_source  # type: ignore[attr-defined]
    return source


def base_variables() -> dict[str, Any]:
    """A fresh variables mapping holding the template globals (range, dict, …)."""
    return dict(environment(False).globals)


def render(fields: tuple[tuple[str, Renderer], ...], variables: dict[str, Any]) -> dict[str, str]:
    """The rendered content; raises what the template raises (the engine counts it), a
    TemplateLimitError for a template over a limit.

    `variables` must come from base_variables(): it is used as the context's parent as is.
    """
    out = {}
    for name, value in fields:
        if isinstance(value, str):
            out[name] = value
        else:
            context = value.new_context(variables, shared=True)
            text = "".join(value.root_render_func(context))
            if len(text) > MAX_OUTPUT:
                raise TemplateLimitError(
                    f"the content is {len(text):,} characters long, over the output limit of "
                    f"{MAX_OUTPUT:,} (MAX_OUTPUT)"
                )
            out[name] = text
    return out
