"""Allocate a placement's offers to a whole population (steps 3 and 5), on any SqlEngine.

Each recipient gets what the engine would give it: its candidates (candidates.py) walked
best first, skipping an offer its presentation policies block or whose category is full on
the placement, until N are chosen; free slots are then filled from the placement's
fallback offers in their order. Capping counts the recipient's history *plus* what this
run already gave it (a category capped at 1 a week takes one offer of it, not two), so the
choosing is done in rounds, each a set-based statement over every recipient at once:
round k gives every recipient its best offer still allowed, then the run's usage grows.

Inventory is exact and goes to the highest scorers (policies.py): the one place batch and
the engine may differ, which is first come, first served, and only when an inventory runs
out.

Two ways to run the rounds, with the same result (tests/batch/test_allocate.py):
`lists` (lists.py, DuckDB: one pass over the population, each recipient's ranked list
kept in its row) and `rows` (rows.py, any engine: a table of candidate rows, a window per
round; Spark's).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import duckdb

from overture.batch.candidates import CandidateQuery, candidates_query
from overture.batch.engines import DuckDBEngine, SqlEngine
from overture.batch.lists import PREFIX, allocate_lists
from overture.batch.policies import HISTORY_COLUMNS, load_policies
from overture.batch.rows import allocate_rows
from overture.engine.plan import DecisionPlan

__all__ = ["HISTORY_COLUMNS", "Allocation", "allocate"]

RESULT_COLUMNS = ("recipient", "rank", "offer", "score", "fallback")
Method = Literal["lists", "rows"]


@dataclass(frozen=True)
class Allocation:
    """Where a run's propositions are: `table` in `engine`, with RESULT_COLUMNS and
    `round` (the round that chose it)."""

    engine: SqlEngine
    table: str
    candidates: CandidateQuery
    n: int
    rounds: int  # rounds run (ranked and fallback)
    refusals: int  # inventory refusals (a recipient bumped from an offer that ran out)
    method: Method  # how the rounds ran (lists or rows)

    def rows(self) -> list[tuple[Any, ...]]:
        """Every proposition, by recipient and rank (for tests and small runs)."""
        cols = ", ".join(RESULT_COLUMNS)
        return self.engine.rows(f"SELECT {cols} FROM {self.table} ORDER BY recipient, rank")


def allocate(
    engine: SqlEngine | duckdb.DuckDBPyConnection,
    plan: DecisionPlan,
    placement: str,
    population: str,
    n: int | None = None,
    *,
    now: dt.datetime,
    history: str | None = None,
    inventory_used: Mapping[tuple[str, str], int] | None = None,
    audience: str | None = None,
    context: Mapping[str, Any] | None = None,
    on_round: Callable[[int, int], None] | None = None,
    method: Method | None = None,
    prefix: int = PREFIX,
) -> Allocation:
    """Propositions for every recipient of `population` (a table or view in the engine,
    one row per recipient: the ids unique and not null, as run_batch checks), at most `n`
    each (the placement's maximum when None).

    `history` names the history table; `inventory_used` is what each inventory counter
    `(offer, period)` has already spent (the runtime's inventory_counters); when None, it
    is counted from `history`'s presentations. `on_round(round, rounds at most)` is called
    as each round ends (a progress bar). `method`: `lists` (DuckDB's default; `prefix`
    ranked candidates per recipient kept as rows) or `rows` (any engine). Leaves tables
    `_alloc_*` in the engine."""
    if isinstance(engine, duckdb.DuckDBPyConnection):
        engine = DuckDBEngine(engine)
    chosen = method or ("lists" if isinstance(engine, DuckDBEngine) else "rows")
    if chosen not in ("lists", "rows"):
        raise ValueError(f"unknown allocation method {chosen!r}: lists or rows")
    if chosen == "lists" and not isinstance(engine, DuckDBEngine):
        raise ValueError(f"the lists method needs DuckDB; use rows on {engine.name}")
    if prefix < 1:
        raise ValueError(f"prefix {prefix}: keep at least 1 row per recipient")
    audience = audience or plan.default_audience
    compiled = plan.placements[placement]
    n = compiled.max_offers if n is None else min(n, compiled.max_offers)
    query = candidates_query(
        plan,
        placement,
        population,
        now=now,
        audience=audience,
        context=context,
        dialect=engine.dialect,
    )
    inventory = load_policies(
        engine,
        compiled,
        audience,
        now=now,
        history=history,
        inventory_used=inventory_used,
        recipients=query.ids_sql(),
    )
    per_category = compiled.max_per_category
    fallbacks = bool(compiled.fallbacks.get(audience))
    if chosen == "lists":
        assert isinstance(engine, DuckDBEngine)
        rounds, refusals = allocate_lists(
            engine,
            query,
            n,
            per_category=per_category,
            inventory=inventory,
            fallbacks=fallbacks,
            on_round=on_round,
            prefix=prefix,
        )
    else:
        rounds, refusals = allocate_rows(
            engine,
            query,
            n,
            per_category=per_category,
            inventory=inventory,
            fallbacks=fallbacks,
            on_round=on_round,
        )
    return Allocation(engine, "_alloc_chosen", query, n, rounds, refusals, chosen)
