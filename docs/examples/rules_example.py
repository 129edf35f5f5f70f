"""The rule language from Python (run by tests/docs/test_examples.py)."""

from __future__ import annotations

import datetime as dt

from overture.rules import RuleError, Schema, Type, compile_rule

schema = Schema(
    profile={
        "age": Type.INT,
        "country": Type.STRING,
        "tags": Type.LIST,
        "last_purchase": Type.DATE,
    },
    context={"device": Type.STRING},
)


def main() -> dict[str, object]:
    rule = compile_rule(
        "age >= 18 and country in ('FR', 'DE') and 'gold' not in tags "
        "and days_since(last_purchase) < 30",
        schema,
    )
    customer = {
        "age": 30,
        "country": "FR",
        "tags": ["silver"],
        "last_purchase": dt.date(2026, 11, 10),
    }
    now = dt.datetime(2026, 11, 23, 9, 0)
    try:
        compile_rule("agee > 3", schema)
    except RuleError as exc:
        error = str(exc)
    return {
        "eligible": rule.test(customer, now=now),
        "unknown age": rule.test({**customer, "age": None}, now=now),
        "duckdb": rule.sql("duckdb", now=now),
        "error": error,
    }


if __name__ == "__main__":
    for key, value in main().items():
        print(f"{key}: {value}")
