"""Rule benchmark: evaluations per second of one 4-clause rule, compiled vs interpreted.

    python -m benchmarks.rules [--seconds 2]

The rule is the one in DESIGN.md §5 (a comparison, a list membership, a negated list-field
membership and a date function). The baseline walks the checked syntax tree per evaluation
(overture.rules.interpreter), measured in the same run; the ratio is printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from overture.rules import Env, Instant, Schema, Type, compile_rule, evaluate

RULE = (
    "age >= 18 and country in ('FR', 'DE') and 'gold' not in tags "
    "and days_since(last_purchase) < 30"
)
SCHEMA = Schema(
    profile={"age": Type.INT, "country": Type.STRING, "tags": Type.LIST, "last_purchase": Type.DATE}
)
PROFILE = {"age": 30, "country": "FR", "tags": ["silver"], "last_purchase": dt.date(2026, 11, 10)}


def rate(fn: Callable[[], Any], seconds: float) -> float:
    """Calls per second of `fn` over about `seconds` (batches of 10,000 calls)."""
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10_000):
            fn()
        calls += 10_000
    return calls / (time.perf_counter() - start)


def main(seconds: float = 2.0) -> dict[str, float]:
    rule = compile_rule(RULE, SCHEMA)
    predicate = rule.predicate
    assert predicate is not None
    instant = Instant.at(dt.datetime(2026, 11, 23))
    empty: dict[str, Any] = {}
    env = Env(instant, PROFILE)
    assert predicate(PROFILE, empty, empty, empty, instant) is (evaluate(rule.tree, env) is True)
    compiled = rate(lambda: predicate(PROFILE, empty, empty, empty, instant), seconds)
    interpreted = rate(lambda: evaluate(rule.tree, env), seconds)
    return {"compiled": compiled, "interpreted": interpreted, "ratio": compiled / interpreted}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    result = main(parser.parse_args().seconds)
    print(f"rule: {RULE}")
    print(f"compiled closure:  {result['compiled'] / 1e6:6.2f} M evaluations/s")
    print(f"interpreted tree:  {result['interpreted'] / 1e6:6.2f} M evaluations/s")
    print(f"ratio: {result['ratio']:.0f}x")
