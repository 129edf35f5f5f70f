"""The propositions of a run as a user gets them: offer name and category, a tracking code
each, and the content rendered for each recipient (step 7 of the pipeline).

Rendering is the only step that is not SQL: templates are Jinja (sandboxed, as in real
time). It stays fast over millions of rows because a template rarely reads more than a
field or two: its syntax tree says which `profile.x` and `segment.x` it reads, so each
distinct combination of those values is rendered once (an email with "Hello
{{ profile.first_name }}" renders once per first name, not once per recipient), and the
results are joined back in SQL. A template that reads the profile some other way (a whole
`profile`, a computed key) is rendered per distinct row of every field instead.

Content that fails to render leaves its field empty (NULL) and is counted: the real-time
engine would have skipped the offer, but a batch's choices are already made.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jinja2 import nodes

from overture.batch.allocate import Allocation
from overture.batch.candidates import segment_column
from overture.catalog.templates import environment
from overture.engine.plan import DecisionPlan
from overture.engine.render import Renderer, base_variables, render, source_of
from overture.rules import Type
from overture.rules.sqlcompile import sql_type

OUTPUT = "_out"  # the finished propositions
COLUMNS = (
    "recipient",
    "rank",
    "offer",
    "offer_name",
    "category",
    "score",
    "fallback",
    "tracking_code",
)
_ALL = None  # a template whose reads cannot be listed: every profile field and segment


@dataclass
class Output:
    """Where the finished propositions are (`table` in the allocation's engine)."""

    table: str
    content_columns: tuple[str, ...]  # content_<field>, in the placement's field order
    tracking_prefix: str
    renders: int = 0  # distinct renderings done
    render_errors: list[str] = field(default_factory=list)  # "offer field: error", first 20
    render_error_count: int = 0

    @property
    def columns(self) -> tuple[str, ...]:
        return (*COLUMNS, *self.content_columns)


def content_column(name: str) -> str:
    return f"content_{name}"


def finish(
    allocation: Allocation,
    plan: DecisionPlan,
    *,
    context: Mapping[str, Any] | None = None,
    tracking_prefix: str | None = None,
) -> Output:
    """Build the output table of an allocation: metadata, tracking codes, content."""
    engine = allocation.engine
    query = allocation.candidates
    placement = plan.placements[query.placement]
    info = plan.audiences[query.audience]
    prefix = tracking_prefix or secrets.token_hex(6)  # as the engine's, one per run
    cands = {
        c.offer.code: c
        for c in (
            *placement.candidates.get(query.audience, ()),
            *placement.fallbacks.get(query.audience, ()),
        )
    }
    declared = next(p.fields for p in plan.catalog.placements if p.name == query.placement)
    names = list(dict.fromkeys([*declared, *(k for c in cands.values() for k, _ in c.content)]))
    engine.load(
        "_out_offers",
        [("offer", "VARCHAR"), ("offer_name", "VARCHAR"), ("category", "VARCHAR")],
        [(code, c.offer.name, c.offer.category) for code, c in sorted(cands.items())],
    )
    # a number per proposition, unique within the run: on DuckDB the row's (a numbering
    # window would sort 3 M rows for a million recipients; the order is the rounds', not
    # reproducible from run to run), on Spark by recipient and rank
    numbering = (
        "c.rowid + 1"
        if engine.dialect == "duckdb"
        else "row_number() OVER (ORDER BY c.recipient, c.rank)"
    )
    engine.create(
        "_out_base",
        f"""
        SELECT c.recipient AS recipient, c.rank AS rank, c.offer AS offer,
               o.offer_name AS offer_name, o.category AS category, c.score AS score,
               c.fallback AS fallback, '{prefix}.' || lower(to_hex({numbering})) AS tracking_code
        FROM {allocation.table} c JOIN _out_offers o ON o.offer = c.offer
        """,
    )
    engine.create(
        "_out_recipients", f"SELECT * FROM ({query.recipients}) r", dialect=engine.dialect
    )
    output = Output(OUTPUT, tuple(content_column(n) for n in names), prefix)

    # static fields: one row per offer; templated fields: per offer and what they read
    statics: list[tuple[Any, ...]] = []
    groups: dict[tuple[str, ...] | None, list[str]] = defaultdict(list)
    for code, cand in sorted(cands.items()):
        content = dict(cand.content)
        statics.append((code, *(_static(content.get(n)) for n in names)))
        templates = [r for r in content.values() if not isinstance(r, str)]
        if templates:
            groups[_reads_of(templates)].append(code)
    engine.load("_out_static", [("offer", "VARCHAR"), *((n, "VARCHAR") for n in names)], statics)
    population_fields = [f for f in info.fields if f != info.id_field]
    segments = list(info.segments)
    joins: list[str] = []
    pick: dict[str, list[str]] = {n: [] for n in names}
    variables = base_variables()
    variables["context"] = dict(context or {})
    variables["placement"] = placement.variables
    for number, (reads, codes) in enumerate(sorted(groups.items(), key=lambda g: g[1])):
        keys = _columns(reads, population_fields, segments, info.id_field)
        table = f"_out_tpl{number}"
        rows = engine.rows(
            f"SELECT DISTINCT b.offer{''.join(f', r.{_q(k)}' for k in keys)} "
            f"FROM _out_base b JOIN _out_recipients r ON r.{_q(info.id_field)} = b.recipient "
            f"WHERE b.offer IN ({', '.join(_lit(c) for c in codes)})"
        )
        rendered = []
        for row in rows:
            code, values = row[0], dict(zip(keys, row[1:], strict=True))
            cand = cands[code]
            variables["offer"] = cand.offer.namespace
            variables["profile"] = {k: v for k, v in values.items() if not _is_segment(k)}
            variables["segment"] = {
                k.removeprefix("segment__"): bool(v) for k, v in values.items() if _is_segment(k)
            }
            rendered.append((code, *row[1:], *_render(cand.content, variables, names, output)))
            output.renders += 1
        engine.load(
            table,
            [("offer", "VARCHAR"), *((k, _key_type(k, info.fields)) for k in keys)]
            + [(n, "VARCHAR") for n in names],
            rendered,
        )
        on = " AND ".join(
            [f"{table}.offer = b.offer"]
            + [f"{table}.{_q(k)} IS NOT DISTINCT FROM r.{_q(k)}" for k in keys]
        )
        joins.append(f"LEFT JOIN {table} ON {on}")
        for n in names:
            pick[n].append(f"{table}.{_q(n)}")
    content_sql = "".join(
        f", coalesce({', '.join([*pick[n], f's.{_q(n)}'])}) AS {_q(content_column(n))}"
        for n in names
    )
    recipients_join = (
        f"JOIN _out_recipients r ON r.{_q(info.id_field)} = b.recipient " if joins else ""
    )
    engine.create(
        OUTPUT,
        f"SELECT {', '.join(f'b.{c}' for c in COLUMNS)}{content_sql} FROM _out_base b "
        f"{recipients_join}LEFT JOIN _out_static s ON s.offer = b.offer {' '.join(joins)}",
    )
    return output


def _static(renderer: Renderer | None) -> str | None:
    return renderer if isinstance(renderer, str) else None


def _render(
    content: Sequence[tuple[str, Renderer]],
    variables: dict[str, Any],
    names: Sequence[str],
    output: Output,
) -> list[str | None]:
    templated = [(k, r) for k, r in content if not isinstance(r, str)]
    try:
        done: Mapping[str, str | None] = render(tuple(templated), variables)
    except Exception as exc:  # a template error must not stop the run: counted, left empty
        code = variables["offer"].get("code", "?")
        output.render_error_count += 1
        if len(output.render_errors) < 20:
            output.render_errors.append(f"{code}: {type(exc).__name__}: {exc}")
        done = {}
    return [done.get(n) if any(k == n for k, _ in templated) else None for n in names]


def _reads_of(renderers: Sequence[Renderer]) -> tuple[str, ...] | None:
    """The profile fields and segments (as segment__name) the templates read; () when none
    are templates; None (_ALL) when a template reads them in a way we cannot list."""
    reads: set[str] = set()
    for renderer in renderers:
        tree = environment(False).parse(source_of(renderer))
        lookups: list[nodes.Getattr | nodes.Getitem] = [
            n
            for n in tree.find_all((nodes.Getattr, nodes.Getitem))
            if isinstance(n, (nodes.Getattr, nodes.Getitem))
        ]
        used = {id(n.node) for n in lookups if isinstance(n.node, nodes.Name)}
        for name in tree.find_all(nodes.Name):
            if name.name in ("profile", "segment") and id(name) not in used:
                return _ALL  # the whole mapping is used (looped over, passed on, ...)
        for lookup in lookups:
            target = lookup.node
            if not (isinstance(target, nodes.Name) and target.name in ("profile", "segment")):
                continue
            if isinstance(lookup, nodes.Getattr):
                key = lookup.attr
            elif isinstance(lookup.arg, nodes.Const) and isinstance(lookup.arg.value, str):
                key = lookup.arg.value
            else:
                return _ALL  # profile[some_expression]
            reads.add(segment_column(key) if target.name == "segment" else key)
    return tuple(sorted(reads))


def _columns(
    reads: tuple[str, ...] | None, fields: list[str], segments: list[str], id_field: str
) -> list[str]:
    """The recipients' columns a group's rendering depends on (those that exist: a field
    the audience does not have reads as missing, as in real time)."""
    known = {*fields, id_field, *(segment_column(s) for s in segments)}
    if reads is _ALL:
        return [*fields, *(segment_column(s) for s in segments)]
    return [r for r in reads if r in known]


def _is_segment(column: str) -> bool:
    return column.startswith("segment__")


def _key_type(column: str, fields: Mapping[str, Type]) -> str:
    if _is_segment(column):
        return "BOOLEAN"
    return sql_type(fields[column]).sql("duckdb")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
