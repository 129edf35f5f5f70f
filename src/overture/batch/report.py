"""The HTML report of a batch simulation: where each offer went, and why some went nowhere.

One self-contained page (plotly.js is embedded once, in the head) so that it can be mailed,
archived and opened offline. Everything on it comes from the figures dict of the run, which
figures_json writes as well, so two runs can be diffed. Tables list every offer; charts show
only the top ones, which keeps the page a few MB (mostly plotly.js) with 500 offers.

Offer names, categories, segments and policy names are user data. The HTML is built with
Jinja2's autoescaping; chart data goes through `tojson`, which escapes <, > and & inside the
scripts; and chart labels are HTML-escaped as well, since plotly.js reads a subset of HTML
in them (it decodes the entities back, so names show as typed).
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
import plotly.graph_objects as go
from markupsafe import Markup
from plotly.offline import get_plotlyjs

TOP_BARS = 40  # offers in the propositions and score charts
TOP_FUNNELS = 12  # offers in the funnel chart's menu
# plotly's precomputed box: its fences are the extremes, not 1.5 IQR
_QUANTILES = {
    "lowerfence": "min",
    "q1": "p25",
    "median": "median",
    "q3": "p75",
    "upperfence": "max",
}

Offer = Mapping[str, Any]


def figures_json(figures: Mapping[str, Any]) -> str:
    """Sorted keys and indentation, so that two runs' figures diff line by line."""
    return json.dumps(figures, indent=2, sort_keys=True, ensure_ascii=False, default=_plain) + "\n"


def write_report(figures: Mapping[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.write_text(render_report(figures), encoding="utf-8")
    return path


def render_report(figures: Mapping[str, Any]) -> str:
    offers = sorted(figures.get("offers") or [], key=lambda o: (-_given(o), str(o.get("offer"))))
    charts = {
        "chart-offers": _offers_chart(offers),
        "chart-categories": _categories_chart(figures.get("categories") or []),
        "chart-segments": _segments_chart(figures.get("segments") or []),
        "chart-funnel": _funnel_chart(offers),
        "chart-scores": _scores_chart(offers),
    }
    config = {"displaylogo": False, "responsive": True}
    kinds = _step_kinds(offers)
    return _TEMPLATE.render(
        f=figures,
        plotlyjs=Markup(get_plotlyjs()),  # trusted: plotly's own bundle, no user text
        charts={
            k: json.loads(c.to_json()) | {"config": config}
            for k, c in charts.items()
            if c is not None
        },
        offers=offers,
        kinds=kinds,
        funnel_rows=[(offer, _funnel_row(offer, kinds)) for offer in offers],
        nobody=offers_nobody_gets(offers),
        top_bars=min(TOP_BARS, sum(1 for offer in offers if _given(offer) > 0)),
        top_funnels=min(TOP_FUNNELS, len(offers)),
        top_scores=min(TOP_BARS, len(_scored(offers))),
    )


def offers_nobody_gets(offers: Sequence[Offer]) -> list[tuple[Offer, str]]:
    """The entries of the offers given to nobody, with why. An offer may have two entries,
    ranked and fallback: given in either role, somebody gets it."""
    given = {str(o.get("offer")) for o in offers if _given(o) > 0}
    return [(o, _why_none(o)) for o in offers if str(o.get("offer")) not in given]


def _plain(value: Any) -> Any:
    """Instants and numpy numbers reach the figures from the engine; anything else is a bug."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _given(offer: Offer) -> int:
    return int(offer.get("propositions", offer.get("allocated")) or 0)


def _label(offer: Offer) -> str:
    """The name a marketer knows, with the code (and the role, for an offer's fallback
    entry) that keep chart categories unique."""
    name, code = offer.get("name"), offer.get("offer")
    role = ", fallback" if offer.get("fallback") else ""
    return _svg_text(f"{name} ({code}{role})" if name and name != code else f"{code}{role}")


def _svg_text(text: object) -> str:
    return html.escape(str(text), quote=False)


def _figure(data: Any, title: str, height: int, x: Any = None, y: Any = None, **layout: Any) -> Any:
    """What every chart shares. `title` is plotly text, escaped by the caller. Axes of names
    are categories by force: a category or segment named "2024" must not become a number."""
    margin = {"l": 10, "r": 10, "t": 60, "b": 10}
    layout = {"title": {"text": title}, "height": height, "margin": margin, **layout}
    layout |= {
        "xaxis": {"automargin": True, **(x or {})},
        "yaxis": {"automargin": True, **(y or {})},
    }
    return go.Figure(data, layout={"template": "plotly_white", **layout})


def _offers_chart(offers: Sequence[Offer]) -> Any:
    shown = [offer for offer in offers if _given(offer) > 0][:TOP_BARS]
    labels = [_label(offer) for offer in shown]
    by_rank = [{str(k): v for k, v in (offer.get("by_rank") or {}).items()} for offer in shown]
    ranks = sorted({rank for counts in by_rank for rank in counts}, key=int)
    bars = [
        go.Bar(name=f"rank {rank}", y=labels, x=[c.get(rank, 0) for c in by_rank], orientation="h")
        for rank in ranks
    ] or [go.Bar(name="propositions", y=labels, x=[_given(o) for o in shown], orientation="h")]
    legend = {"title": {"text": "rank"}, "traceorder": "normal"}
    x, y = {"title": {"text": "propositions"}}, {"type": "category", "autorange": "reversed"}
    height = 140 + 24 * len(shown)
    title = "Propositions per offer"
    return _figure(bars, title, height, x, y, barmode="stack", legend=legend) if shown else None


def _categories_chart(categories: Sequence[Mapping[str, Any]]) -> Any:
    rows = sorted(categories, key=lambda c: -int(c.get("propositions") or 0))
    names = [_svg_text(c.get("category")) for c in rows]
    bars = go.Bar(x=names, y=[c.get("propositions") or 0 for c in rows])
    title = "Propositions per category"
    return _figure(bars, title, 420, x={"type": "category"}) if rows else None


def _segments_chart(segments: Sequence[Mapping[str, Any]]) -> Any:
    names = [_svg_text(s.get("segment")) for s in segments]
    recipients = go.Bar(
        name="recipients in the segment", x=names, y=[s.get("recipients") for s in segments]
    )
    given = go.Bar(
        name="propositions to them", x=names, y=[s.get("propositions") for s in segments]
    )
    title = "Recipients and propositions per segment"
    x = {"type": "category"}
    return _figure([recipients, given], title, 420, x, barmode="group") if names else None


def _candidates(offer: Offer) -> int:
    """Recipients eligible to the offer: what it could have had before policies and ranking."""
    funnel = offer.get("funnel") or []
    eligible = [s for s in funnel if s.get("step") == "eligibility"] or funnel[:1]
    return int(eligible[0].get("remaining") or 0) if eligible else 0


def _funnel_trace(offer: Offer) -> dict[str, Any]:
    funnel = offer.get("funnel") or []
    return {
        "y": [_svg_text(step.get("step")) for step in funnel],
        "x": [step.get("remaining") or 0 for step in funnel],
        "customdata": [step.get("removed") or 0 for step in funnel],
    }


def _funnel_chart(offers: Sequence[Offer]) -> Any:
    """One funnel, and a menu to switch offers: the page stays small with 500 offers."""
    with_funnel = [offer for offer in offers if offer.get("funnel")]
    shown = sorted(with_funnel, key=lambda o: -_candidates(o))[:TOP_FUNNELS]
    if not shown:
        return None
    funnel = go.Funnel(
        **_funnel_trace(shown[0]),
        texttemplate="%{x:,}<br>%{percentInitial:.0%}",
        hovertemplate="%{y}<br>%{x:,} remain, %{customdata:,} removed<extra></extra>",
    )
    titles = [f"Eligibility funnel: {_label(offer)}" for offer in shown]
    buttons = [
        {"label": _label(offer), "method": "update", "args": [_listed(offer), {"title.text": t}]}
        for offer, t in zip(shown, titles, strict=True)
    ]
    menu = {"buttons": buttons, "x": 0, "xanchor": "left", "y": 1.12}
    height = 120 + 44 * max(len(offer["funnel"]) for offer in shown)
    margin = {"l": 10, "r": 10, "t": 110, "b": 10}
    return _figure(
        funnel, titles[0], height, y={"type": "category"}, margin=margin, updatemenus=[menu]
    )


def _listed(offer: Offer) -> dict[str, Any]:
    """Plotly's update takes one list per trace."""
    return {key: [value] for key, value in _funnel_trace(offer).items()}


def _scored(offers: Sequence[Offer]) -> list[Offer]:
    return [o for o in offers if (o.get("score") or {}).get("count")]


def _scores_chart(offers: Sequence[Offer]) -> Any:
    """Boxes from the run's quantiles: the figures hold no raw scores."""
    scores = [(_label(offer), offer["score"]) for offer in _scored(offers)[:TOP_BARS]]
    box = go.Box(
        y=[label for label, _ in scores],
        **{key: [s.get(name) for _, s in scores] for key, name in _QUANTILES.items()},
        orientation="h",
        boxpoints=False,
    )
    x = {"title": {"text": "score (min, quartiles, max)"}}
    y = {"type": "category", "autorange": "reversed"}
    height = 140 + 28 * len(scores)
    title = "Scores of the candidates"
    return _figure(box, title, height, x, y, showlegend=False) if scores else None


def _kind(step: Mapping[str, Any]) -> tuple[str, str]:
    kind, _, detail = str(step.get("step") or "").partition(" ")
    return kind, detail.removeprefix("policy ")


def _step_kinds(offers: Sequence[Offer]) -> list[str]:
    """One column per kind of step, in pipeline order, though offers have different steps."""
    kinds: list[str] = []
    for offer in offers:
        previous = -1
        for step in offer.get("funnel") or []:
            kind = _kind(step)[0]
            if kind not in kinds:
                kinds.insert(previous + 1, kind)
            previous = kinds.index(kind)
    return [kind for kind in kinds if kind != "population"]


def _funnel_row(offer: Offer, kinds: Sequence[str]) -> dict[str, Any]:
    """Steps of a kind are summed (an offer may have several filter or capping policies);
    their names go under the count, with each one's share when there are several."""
    start: int | None = None
    steps: dict[str, list[tuple[str, int]]] = {}
    for step in offer.get("funnel") or []:
        kind, detail = _kind(step)
        if kind == "population":
            start = step.get("remaining")
        else:
            steps.setdefault(kind, []).append((detail, int(step.get("removed") or 0)))
    cells: list[tuple[int, str] | None] = []
    for kind in kinds:
        parts = steps.get(kind, [])
        names = [f"{d} {n:,}" if len(parts) > 1 else d for d, n in parts if d]
        cells.append((sum(n for _, n in parts), ", ".join(names)) if parts else None)
    return {"start": start, "cells": cells}


def _why_none(offer: Offer) -> str:
    """The run's own reason when it gave one; otherwise the step that removed the last ones."""
    if offer.get("why_none"):
        return str(offer["why_none"])
    for step in offer.get("funnel") or []:
        if step.get("remaining") == 0:
            return f"{step.get('step')} removed every remaining recipient"
    return "no reason recorded"


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—" if value is None else str(value)
    return f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"


_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
_ENV.filters["num"] = _number
_TEMPLATE = _ENV.from_string("""\
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Overture simulation: {{ f.get("placement") }} ({{ f.get("environment") }})</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; } td, th { padding: .25em .6em; }
th { text-align: left; background: #f3f3f3; } td.n { text-align: right; }
tr:nth-child(even) td { background: #fafafa; } small { color: #666; display: block; }
.note { background: #fff4d6; border-left: 4px solid #e0a800; padding: .5em 1em; }
.overture-chart { width: 100%; margin: 1em 0 2em; } .scroll { max-height: 40em; overflow: auto; }
</style>
<script>{{ plotlyjs }}</script>
</head><body>
{% macro offer_cell(offer) %}<td>{{ offer.get("name") or offer.get("offer") }}<small>{{
  offer.get("offer") }}{% if offer.get("fallback") %}, fallback{% endif %}</small></td>
<td>{{ offer.get("category") or "" }}</td>{% endmacro %}
{% macro chart(id, why) %}{% if id in charts %}<p>{{ why }}</p>
<div class="overture-chart" id="{{ id }}"></div>
<script>Plotly.newPlot({{ id|tojson }}, {{ charts[id]|tojson }});</script>
{% else %}<p><em>Nothing to chart.</em></p>{% endif %}{% endmacro %}
<h1>Simulation of {{ f.get("placement") }}</h1>
{% if f.get("simulation") %}<p class="note">simulation: nothing was recorded</p>{% endif %}
<table>
{% for key, label in [("environment", "environment"), ("deployment", "deployment"),
  ("placement", "placement"), ("audience", "audience"), ("n", "offers per recipient (n)"),
  ("at", "instant"), ("engine", "engine"), ("recipients", "recipients"),
  ("recipients_with_offers", "recipients with at least one offer"),
  ("propositions", "propositions"), ("elapsed_seconds", "elapsed seconds")] %}
<tr><th>{{ label }}</th><td>{{ f.get(key)|num }}{% if key == "recipients_with_offers"
  and f.get("recipients") %} ({{ "%.1f"|format(100 * f.get(key, 0) / f.recipients) }} %){%
  endif %}</td></tr>
{% endfor %}
{% for r in f.get("ranks") or [] %}
<tr><th>propositions at rank {{ r.rank }}</th><td>{{ r.propositions|num }}</td></tr>
{% endfor %}
</table>
<h2>Where the offers went</h2>
{{ chart("chart-offers", "The %d offers with most propositions, of %d; each bar is split by
the rank the offer was given at." % (top_bars, offers|length)) }}
{{ chart("chart-categories", "Propositions per offer category.") }}
<h2>Segments</h2>
{{ chart("chart-segments", "How many recipients are in each segment, and how many
propositions they received (a recipient may be in several segments).") }}
<h2>Eligibility funnel</h2>
{{ chart("chart-funnel", "Recipients remaining after each step, for the %d offers with most
eligible recipients; pick one in the menu." % top_funnels) }}
<p>Recipients removed at each step, for every offer.</p>
<div class="scroll"><table>
<tr><th colspan="3"></th><th colspan="{{ kinds|length }}">removed by the step</th><th></th></tr>
<tr><th>offer</th><th>category</th><th>population</th>{% for k in kinds %}<th>{{ k }}</th>{%
  endfor %}<th>propositions</th></tr>
{% for offer, row in funnel_rows %}
<tr>{{ offer_cell(offer) }}<td class="n">{{ row.start|num }}</td>
{% for cell in row.cells %}<td class="n">{% if cell %}{{ cell[0]|num }}{% if cell[1]
  %}<small>{{ cell[1] }}</small>{% endif %}{% endif %}</td>{% endfor %}
<td class="n">{{ offer.get("propositions", offer.get("allocated"))|num }}</td></tr>
{% endfor %}
</table></div>
<h2>Offers nobody gets, and why</h2>
{% if nobody %}<table><tr><th>offer</th><th>category</th><th>why</th></tr>
{% for offer, why in nobody %}<tr>{{ offer_cell(offer) }}<td>{{ why }}</td></tr>
{% endfor %}</table>{% else %}<p>Every offer was given at least once.</p>{% endif %}
<h2>Scores</h2>
{{ chart("chart-scores", "Scores of the recipients still eligible after the score step, for
the %d offers with most propositions that have any." % top_scores) }}
</body></html>
""")
