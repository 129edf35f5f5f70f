"""Type checking: every problem reported, with its position and a hint."""

from __future__ import annotations

import pytest

from overture.rules import NUMBER_RESULT, RuleError, Schema, Type, check, parse
from overture.rules import nodes as n

SCHEMA = Schema(
    profile={
        "age": Type.INT,
        "income": Type.FLOAT,
        "country": Type.STRING,
        "tags": Type.LIST,
        "vip": Type.BOOL,
        "born": Type.DATE,
        "seen": Type.DATETIME,
    },
    context={"device": Type.STRING},
    segments=frozenset({"young"}),
)


def _errors(
    source: str, schema: Schema = SCHEMA, result: tuple[Type, ...] = (Type.BOOL,)
) -> list[str]:
    with pytest.raises(RuleError) as caught:
        check(parse(source), schema, result)
    return [str(d) for d in caught.value.diagnostics]


def test_unknown_field_suggests_the_closest() -> None:
    assert _errors("agee > 3") == ["1:1: unknown profile field 'agee' — did you mean 'age'?"]


def test_field_from_another_namespace_says_how_to_write_it() -> None:
    assert _errors("device == 'mobile'") == [
        "1:1: unknown profile field 'device' — it is a context field: write context.device"
    ]


def test_all_errors_are_reported_not_just_the_first() -> None:
    errors = _errors("agee > 3 and country + 1 == 2 and segment.old")
    assert len(errors) == 3
    assert (
        errors[0].startswith("1:1:")
        and errors[1].startswith("1:22:")
        and errors[2].startswith("1:35:")
    )


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("age", "must be a condition"),
        ("age == None", "test for a missing value with: x is None"),
        ("born < seen", "convert with date(x) or datetime(x)"),
        ("born + 1 > born", "add_days"),
        ("age and vip", "'and' joins conditions"),
        ("not age", "'not' needs a condition"),
        ("country in []", "empty list"),
        ("age in ('a', 'b')", "list item is string"),
        ("'a' in country", "contains(text, part)"),
        ("1 in tags", "cannot contain int"),
        ("tags == tags", "lists cannot be compared"),
        ("vip < vip", "does not apply to true/false"),
        ("days_since(age) > 1", "must be a date or datetime"),
        ("len(1, 2) > 1", "takes 1 argument"),
        ("date('2024-13-01') < born", "is not a date"),
        ("date(country) < born", "literal"),
        ("coalesce(age, country) > 1", "one type"),
        ("(age if vip else country) == 1", "one type"),
        ("age + (1, 2) > 1", "a list can only follow 'in'"),
        ("treatment.score > 1", "only available in a treatment rule"),
        ("offer.value > 1", "offer.* fields are not available"),
    ],
)
def test_type_errors(source: str, fragment: str) -> None:
    assert any(fragment in e for e in _errors(source)), _errors(source)


def test_segments_unavailable_in_segment_rules() -> None:
    schema = Schema(profile=SCHEMA.profile, context=SCHEMA.context, segments=None)
    assert "segments are not available" in _errors("segment.young", schema)[0]


def test_numeric_result_for_weights() -> None:
    tree = check(parse("income / 1000 + 1"), SCHEMA, NUMBER_RESULT)
    assert tree.type == Type.FLOAT
    assert "must be a int or float" in _errors("country", SCHEMA, NUMBER_RESULT)[0]


def test_types_and_nullability_are_inferred() -> None:
    tree = check(parse("age + 1"), SCHEMA, NUMBER_RESULT)
    assert (tree.type, tree.nullable) == (Type.INT, True)
    tree = check(parse("coalesce(age, 0) - 1"), SCHEMA, NUMBER_RESULT)
    assert (tree.type, tree.nullable) == (Type.INT, True)  # -2**63 - 1 is out of range: null
    tree = check(parse("coalesce(age, 0)"), SCHEMA, NUMBER_RESULT)
    assert (tree.type, tree.nullable) == (Type.INT, False)
    tree = check(parse("segment.young"), SCHEMA)
    assert tree.nullable is False


def test_literal_subexpressions_are_folded() -> None:
    tree = check(parse("age > 2 * 30 + 1"), SCHEMA)
    assert isinstance(tree, n.Compare) and isinstance(tree.right, n.Literal)
    assert tree.right.value == 61
    tree = check(parse("born > date('2020-01-01')"), SCHEMA)
    assert isinstance(tree, n.Compare) and isinstance(tree.right, n.Literal)
    tree = check(parse("1 / 0 is None"), SCHEMA)
    assert isinstance(tree, n.Literal) and tree.value is True


def test_impure_functions_are_not_folded() -> None:
    tree = check(parse("today() > date('2020-01-01')"), SCHEMA)
    assert isinstance(tree, n.Compare) and isinstance(tree.left, n.Call)


def test_treatment_constants_are_substituted() -> None:
    schema = Schema(profile=SCHEMA.profile, constants={"treatment.score": (Type.FLOAT, 50.0)})
    tree = check(parse("treatment.score * 2"), schema, NUMBER_RESULT)
    assert isinstance(tree, n.Literal) and tree.value == 100.0
