"""Forms for catalog objects, made from the catalog's own models.

Every field of every kind gets an input chosen from its type: text, number, checkbox, a
list of choices, a rule (checked as it is typed), a comma-separated list, or, for what is
structured (weights, content, fields, events…), a YAML text area in the catalog's own
file format. A new field in the model thus appears in the console without a template
change. Parsing gives the same dictionary the API would receive, so the same service
functions and the same validation run on it; every problem comes back beside its field.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.datastructures import FormData

from overture.catalog import codec
from overture.design.kinds import BY_SECTION, Kind, members

RULE_FIELDS = frozenset({"eligibility", "rule", "score_expression"})
REFERENCES = {
    "category": "categories",
    "parent": "categories",
    "channel": "channels",
    "zone": "zones",
    "audience": "audiences",
    "segment": "segments",
    "channels": "channels",
    "placements": "placements",
    "categories": "categories",
    "offers": "offers",
    "policies": "policies",
    "fallback_offers": "offers",
}
LONG_TEXT = frozenset({"description"})
EXAMPLES = {
    "weights": "- value: 2\n- value: 5\n  rule: segment.young\n  placements: [web_home_hero]",
    "content": 'headline: "Hello {{ first_name }}"\nbody: "…"',
    "placements": "web_home_hero:\nweb_account_sidebar:\n  headline: 'A shorter one'",
    "attributes": "margin: 12.5\nproduct_family: cards",
    "fields": "age: int\ncountry: string",
    "multipliers": "- value: 1.5\n  start: 2026-12-01\n  end: 2026-12-24",
    "default_content": "headline: Welcome",
    "events": "presented: [presented]\naccepted: [accepted, clicked]\nrejected: [rejected]",
    "context": "device: string\nvisit_count: int",
    "offer_attributes": "margin: float\nproduct_family: string",
    "settings": "default_score: 50",
}


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    widget: Literal["text", "number", "checkbox", "select", "rule", "list", "yaml", "textarea"]
    required: bool = False
    choices: tuple[str, ...] = ()
    reference: str | None = None  # the section whose keys are suggested
    help: str = ""
    only: tuple[str, ...] = ()  # policies: the kinds of policy that have this field
    integer: bool = False


def _strip_none(annotation: Any) -> Any:
    if get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _base(annotation: Any) -> Any:
    """The type under Annotated[...] (Name is Annotated[str, pattern])."""
    if get_origin(annotation) is typing.Annotated:
        return get_args(annotation)[0]
    return annotation


def _widget(name: str, annotation: Any) -> tuple[str, tuple[str, ...], bool]:
    """(widget, choices, integer) for a field's type."""
    inner = _strip_none(annotation)
    if get_origin(inner) is typing.Annotated:
        inner = _strip_none(get_args(inner)[0])
    origin = get_origin(inner)
    if name in RULE_FIELDS:
        return "rule", (), False
    if name in LONG_TEXT:
        return "textarea", (), False
    if origin is Literal:
        return "select", tuple(str(a) for a in get_args(inner)), False
    if inner is bool:
        return "checkbox", (), False
    if inner is int:
        return "number", (), True
    if inner is float:
        return "number", (), False
    if inner is str:
        return "text", (), False
    if origin is list and get_args(inner) and _base(get_args(inner)[0]) is str:
        return "list", (), False  # names (Name, Code, plain text), comma-separated
    args = set(get_args(inner))
    if args and args <= {dt.datetime, dt.date}:
        return "text", (), False  # a date or a datetime, written as text
    return "yaml", (), False


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _help(name: str, widget: str, model_field: Any) -> str:
    if model_field.description:
        return str(model_field.description)
    if name in ("start", "end"):
        return "YYYY-MM-DD (a whole day, UTC) or YYYY-MM-DDTHH:MM:SS"
    if widget == "list":
        return "names separated by commas"
    if widget == "rule":
        return "a rule, e.g. age >= 18 and segment.young (empty: always true)"
    return ""


def fields_of(kind: Kind) -> list[FormField]:
    """The form of a kind: its key first, then every field of its model (of every member,
    for policies, with `only` saying which kinds of policy have it)."""
    models = [m for m in members(kind.model) if isinstance(m, type) and issubclass(m, BaseModel)]
    by_name: dict[str, FormField] = {}
    owners: dict[str, list[str]] = {}
    for model in models:
        policy_kind = ""
        if "kind" in model.model_fields:
            policy_kind = str(get_args(model.model_fields["kind"].annotation)[0])
        for name, model_field in model.model_fields.items():
            owners.setdefault(name, []).append(policy_kind)
            if name in by_name:
                widget, choices, _integer = _widget(name, model_field.annotation)
                known = by_name[name]
                if widget == "select" and known.widget == "select" and name != "kind":
                    merged = tuple(dict.fromkeys((*known.choices, *choices)))
                    by_name[name] = FormField(**{**known.__dict__, "choices": merged})
                continue
            widget, choices, integer = _widget(name, model_field.annotation)
            if name == "kind" and len(models) > 1:
                widget, choices = (
                    "select",
                    tuple(str(get_args(m.model_fields["kind"].annotation)[0]) for m in models),
                )
            by_name[name] = FormField(
                name,
                _label(name),
                widget,  # type: ignore[arg-type]
                required=model_field.is_required(),
                choices=choices,
                reference=REFERENCES.get(name),
                help=_help(name, widget, model_field),
                integer=integer,
            )
    out = []
    for name, form_field in by_name.items():
        kinds = tuple(k for k in owners[name] if k)
        only = kinds if len(models) > 1 and len(kinds) < len(models) else ()
        out.append(FormField(**{**form_field.__dict__, "only": only}))
    first = [f for f in out if f.name == kind.key] + [f for f in out if f.name == "kind"]
    window = [f for f in out if f.name in ("start", "end")]  # after what the object is
    rest = [f for f in out if f not in first and f not in window]
    return first + rest + window


def values_of(kind: Kind, spec: BaseModel | None) -> dict[str, str]:
    """The form's text for each field of a stored object."""
    if spec is None:
        return {}
    data = codec.plain(spec)
    out: dict[str, str] = _defaults(kind, [type(spec)])  # its own model's defaults
    for form_field in fields_of(kind):
        if form_field.name not in data:
            continue
        value = data[form_field.name]
        out[form_field.name] = text_of(form_field, value)
    return out


def text_of(form_field: FormField, value: Any) -> str:
    if value is None:
        return ""
    if form_field.widget == "checkbox":
        return "on" if value else ""
    if form_field.widget == "list":
        return ", ".join(str(v) for v in value)
    if form_field.widget == "yaml":
        if value in ({}, []):
            return ""
        text = yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=100)
        if form_field.name == "placements":  # an offer's: `web_home_hero:` means no overrides
            text = text.replace(": {}\n", ":\n")
        return text.strip()
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def defaults_of(kind: Kind) -> dict[str, str]:
    """A new object's form: the defaults its model gives (for a union such as policies,
    those its members agree on; the others stay empty, and the chosen member's apply)."""
    return _defaults(kind, [m for m in members(kind.model) if _is_model(m)])


def _is_model(member: Any) -> bool:
    return isinstance(member, type) and issubclass(member, BaseModel)


def _defaults(kind: Kind, models: list[type[BaseModel]]) -> dict[str, str]:
    found: dict[str, list[Any]] = {}
    for model in models:
        for name, model_field in model.model_fields.items():
            if model_field.is_required():
                continue
            default = model_field.get_default(call_default_factory=True)
            if isinstance(default, BaseModel):
                default = default.model_dump(mode="json")
            found.setdefault(name, []).append(default)
    by_name = {f.name: f for f in fields_of(kind)}
    return {
        name: text_of(by_name[name], defaults[0])
        for name, defaults in found.items()
        if name in by_name and all(d == defaults[0] for d in defaults)
    }


@dataclass
class Parsed:
    data: dict[str, Any]
    errors: dict[str, list[str]]  # field -> messages ("" : the whole form)


def parse(kind: Kind, form: FormData, *, key: str | None = None) -> Parsed:
    """The object a form describes, as plain data, and the fields that do not read."""
    data: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    fields = fields_of(kind)
    chosen_kind = form.get("kind") if any(f.name == "kind" for f in fields) else None
    for form_field in fields:
        if form_field.only and chosen_kind not in form_field.only:
            continue
        raw = form.get(form_field.name)
        text = raw.strip() if isinstance(raw, str) else ""
        if form_field.name == kind.key and key is not None:
            text = key  # the key of an object being edited never changes
        if form_field.widget == "checkbox":
            data[form_field.name] = bool(text)
            continue
        if not text:
            continue
        try:
            data[form_field.name] = _value(form_field, text)
        except ValueError as exc:
            errors.setdefault(form_field.name, []).append(str(exc))
    return Parsed(data, errors)


def _value(form_field: FormField, text: str) -> Any:
    if form_field.widget == "number":
        what = "a whole number" if form_field.integer else "a number"
        try:
            value = int(text) if form_field.integer else float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not {what}") from None
        if not math.isfinite(value) or abs(value) > 2**53:
            raise ValueError(f"{text!r} is not {what} this catalog can hold")
        return value
    if form_field.widget == "list":
        return [item.strip() for item in re.split(r"[,\n]", text) if item.strip()]
    if form_field.widget == "yaml":
        try:
            return yaml.safe_load(text)
        except RecursionError:
            raise ValueError("it is nested too deep; write it as in a catalog file") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            problem = getattr(exc, "problem", None) or "it is not valid YAML"
            raise ValueError(f"{problem}{where}; write it as in a catalog file") from None
    return text


def validate(kind: Kind, parsed: Parsed) -> BaseModel | None:
    """The model, or None with the model's complaints added to `parsed.errors`."""
    if parsed.errors:
        return None
    try:
        if kind.section in BY_SECTION:
            return kind.validate(parsed.data)
        model: BaseModel = TypeAdapter(kind.model).validate_python(parsed.data)
        return model
    except ValidationError as exc:
        for error in exc.errors():
            loc = [str(p) for p in error.get("loc", ())]
            if loc and loc[0] in ("filter", "capping", "suppression", "inventory"):
                loc = loc[1:]  # the member of the policies' union
            name = loc[0] if loc else ""
            detail = ".".join(loc[1:])
            message = str(error["msg"]).removeprefix("Value error, ")
            if error["type"] == "missing":
                message = "required"
            parsed.errors.setdefault(name, []).append(f"{detail}: {message}" if detail else message)
        return None


_WHERE = re.compile(r"^(?P<section>\w+)\[(?P<key>[^\]]*)\]\.?(?P<field>\w*)(?P<rest>.*)$")
_AT = re.compile(r":(\d+):(\d+)$")


def place_errors(
    kind: Kind, key: str, problems: list[dict[str, Any]], errors: dict[str, list[str]]
) -> None:
    """Put the service's errors (`where` like `offers[X].eligibility:1:5`) beside the
    fields of this object; the others (another object's) go to the whole form."""
    for problem in problems:
        where = str(problem.get("where", ""))
        message = str(problem.get("message", ""))
        hint = problem.get("hint")
        match = _WHERE.match(where)
        text = message + (f" — {hint}" if hint else "")
        if match and match["section"] == kind.section and match["key"] == key and match["field"]:
            rest = match["rest"]
            at = _AT.search(rest)
            if at:
                text = f"line {at[1]}, column {at[2]}: {text}"
                rest = rest[: at.start()]
            if rest.strip("."):
                text = f"{rest.strip('.')}: {text}"
            errors.setdefault(match["field"], []).append(text)
        else:
            errors.setdefault("", []).append(f"{where}: {text}")
