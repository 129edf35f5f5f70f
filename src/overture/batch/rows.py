"""Allocation over a table of candidate rows: the portable way (Spark, and any engine).

The candidates (one row per recipient and candidate offer, candidates.py) are
materialised, then chosen the way the engine walks them: in each round, every recipient
takes its best candidate still allowed (a window over its rows: score, then tie-break
order) until N are chosen; then fallback offers fill free slots in their order. Capping
policies count the history plus what the run has given so far (`_alloc_usage`), so a
category capped at 1 a week takes one offer of it, not two. An offer skipped in a round
stays skipped (usage only grows), so N rounds reproduce the engine's walk exactly.

Each round sorts every remaining candidate row (150 M of them for a million recipients and
500 offers): correct everywhere, and what a cluster is for. On one machine, lists.py does
the same choosing in a fraction of the time.
"""

from __future__ import annotations

from collections.abc import Callable

from overture.batch.candidates import CandidateQuery
from overture.batch.engines import SqlEngine
from overture.batch.policies import refuse_over_inventory, spend_inventory, used_up, with_run


def allocate_rows(
    engine: SqlEngine,
    query: CandidateQuery,
    n: int,
    *,
    per_category: int | None,
    inventory: bool,
    fallbacks: bool,
    on_round: Callable[[int, int], None] | None,
) -> tuple[int, int]:
    """Choose into `_alloc_chosen`; returns (rounds run, inventory refusals)."""
    engine.create("_alloc_cand", query.sql, dialect=query.dialect)
    # filters and suppression do not change during the run: drop what they block now
    suppressed = used_up("suppression", "_alloc_used")
    engine.create(
        "_alloc_cand", f"SELECT * FROM _alloc_cand c WHERE c.allowed AND NOT {suppressed}"
    )
    engine.create("_alloc_usage", "SELECT * FROM _alloc_used")
    rounds = refusals = 0
    for fallback in (False, True) if fallbacks else (False,):
        for _ in range(n):  # a round over every candidate costs, even with nothing to fill
            rounds += 1
            proposals = _proposals(
                rounds, n=n, fallback=fallback, per_category=per_category, inventory=inventory
            )
            while True:
                engine.create("_alloc_prop", proposals)
                if not inventory:
                    break
                over = refuse_over_inventory(engine)
                if not over:
                    break
                refusals += over
            engine.append("_alloc_chosen", "SELECT * FROM _alloc_prop")
            if on_round is not None:
                on_round(rounds, 2 * n)
            if not engine.rows("SELECT count(*) FROM _alloc_prop")[0][0]:
                break
            _spend(engine, rounds)
            if inventory:
                spend_inventory(engine, rounds)
    return rounds, refusals


def _proposals(
    number: int, *, n: int, fallback: bool, per_category: int | None, inventory: bool
) -> str:
    """Each recipient's best candidate still allowed: this round's proposals."""
    order = "c.ord" if fallback else "c.score DESC, c.ord"
    category_full = (
        ""
        if fallback or per_category is None
        else f"""AND (SELECT count(*) FROM _alloc_chosen x JOIN _alloc_offers xo
                     ON xo.offer = x.offer
                  WHERE x.recipient = c.recipient AND xo.category = o.category) < {per_category}"""
    )
    refused = (
        """AND NOT EXISTS (SELECT 1 FROM _alloc_refused r
                           WHERE r.recipient = c.recipient AND r.offer = c.offer)
           AND NOT EXISTS (SELECT 1 FROM _alloc_inv i
                           WHERE i.offer = c.offer AND i.remaining <= 0)"""
        if inventory
        else ""
    )
    capped = used_up("capping", "_alloc_usage")
    return f"""
        SELECT c.recipient AS recipient, coalesce(k.taken, 0) + 1 AS rank, c.offer AS offer,
               c.score AS score, c.fallback AS fallback, {number} AS round,
               CAST(NULL AS INTEGER) AS pos
        FROM _alloc_cand c
        JOIN _alloc_offers o ON o.offer = c.offer
        LEFT JOIN (SELECT recipient, CAST(count(*) AS INTEGER) AS taken FROM _alloc_chosen
                   GROUP BY recipient) k ON k.recipient = c.recipient
        WHERE c.fallback = {str(fallback).upper()}
          AND coalesce(k.taken, 0) < {n}
          AND NOT EXISTS (SELECT 1 FROM _alloc_chosen x
                          WHERE x.recipient = c.recipient AND x.offer = c.offer)
          AND NOT {capped}
          {category_full}
          {refused}
        QUALIFY row_number() OVER (PARTITION BY c.recipient ORDER BY {order}) = 1
        """


def _spend(engine: SqlEngine, number: int) -> None:
    """Round `number`'s choices spend their capping budgets."""
    engine.create("_alloc_usage", with_run("_alloc_usage", f"x.round = {number}"))
