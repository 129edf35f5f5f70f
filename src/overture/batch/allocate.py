"""Allocate a placement's offers to a whole population (steps 3 and 5), on any SqlEngine.

The candidates (candidates.py) are ranked per recipient, then chosen the way the engine
walks them: best first, skipping an offer its presentation policies block, or whose
category is full on the placement, until N are chosen; free slots are filled from the
placement's fallback offers in their order. Capping policies count the recipient's history
*plus* what this run already gave them (a category capped at 1 a week takes one offer of
it, not two), so choosing is done in rounds, each a set-based statement over every
recipient at once: round k gives every recipient its best offer still allowed, then the
run's usage is updated. An offer skipped in a round stays skipped (usage only grows), so
N rounds reproduce the engine's walk exactly.

Inventory is exact, and goes to the highest scorers: within a round, every recipient
proposes its best allowed offer; an offer with R presentations left keeps the R proposers
who score it highest (ties: the smaller recipient id) and refuses the others, who propose
their next offer in the same round, which may in turn bump a lower scorer elsewhere
(deferred acceptance, as in Gale-Shapley; it ends because refusals only grow). Rounds go in
rank order, so a recipient for whom the offer is the best comes before one for whom it is
second; within a rank, the score decides. Real time is first come, first served instead:
that is the one place batch and the engine may differ, and only when an inventory runs out.

History is a table `(profile_id, event, offer_code, categories VARCHAR[], channel, at)` of
the counted entries (propositions count as `presented`, as in the runtime).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb

from overture.batch.candidates import CandidateQuery, candidates_query
from overture.batch.engines import DuckDBEngine, SqlEngine
from overture.engine.plan import DecisionPlan

HISTORY_COLUMNS = (
    ("profile_id", "VARCHAR"),
    ("event", "VARCHAR"),
    ("offer_code", "VARCHAR"),
    ("categories", "VARCHAR[]"),
    ("channel", "VARCHAR"),
    ("at", "TIMESTAMP"),
)
RESULT_COLUMNS = ("recipient", "rank", "offer", "score", "fallback")


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

    def rows(self) -> list[tuple[Any, ...]]:
        """Every proposition, by recipient and rank (for tests and small runs)."""
        cols = ", ".join(RESULT_COLUMNS)
        return self.engine.rows(f"SELECT {cols} FROM {self.table} ORDER BY recipient, rank")


def inventory_period(per: str, now: dt.datetime) -> str:
    """The counter an inventory policy reads: the UTC day, or 'total' (as the runtime)."""
    return now.date().isoformat() if per == "day" else "total"


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
) -> Allocation:
    """Propositions for every recipient of `population` (a table or view in the engine),
    at most `n` each (the placement's maximum when None).

    `history` names the history table; `inventory_used` is what each inventory counter
    `(offer, period)` has already spent (the runtime's inventory_counters); when None, it
    is counted from `history`'s presentations. `on_round(round, rounds at most)` is called
    as each round ends (a progress bar). Leaves tables `_alloc_*` in the engine."""
    if isinstance(engine, duckdb.DuckDBPyConnection):
        engine = DuckDBEngine(engine)
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
    engine.create("_alloc_cand", query.sql, dialect=engine.dialect)
    if history is None:
        engine.load("_alloc_history", HISTORY_COLUMNS, [])
        history = "_alloc_history"

    # the policies each offer is subject to on this placement, and their limits
    defs: dict[str, tuple[str, str, str, list[str], dt.datetime | None, int]] = {}
    offer_defs: set[tuple[str, str]] = set()
    offers: dict[str, str] = {}
    inventory: dict[str, list[tuple[str, int]]] = {}  # offer -> (period, limit)
    cands = [*compiled.candidates.get(audience, ()), *compiled.fallbacks.get(audience, ())]
    for cand in cands:
        offers[cand.offer.code] = cand.offer.category
        for policy, key in cand.policies:
            if policy.kind == "inventory":
                period = inventory_period(policy.per, now)
                inventory.setdefault(cand.offer.code, []).append((period, policy.limit))
            if policy.kind not in ("capping", "suppression"):
                continue
            ident = f"{policy.name}\x1f{key}"
            since = now - policy.window if policy.window is not None else None
            events = ["presented"] if policy.kind == "capping" else list(policy.events)
            defs[ident] = (policy.kind, policy.per, key, events, since, policy.limit)
            offer_defs.add((cand.offer.code, ident))
    engine.load(
        "_alloc_defs",
        [
            ("id", "VARCHAR"),
            ("kind", "VARCHAR"),
            ("scope", "VARCHAR"),
            ("key", "VARCHAR"),
            ("events", "VARCHAR[]"),
            ("since", "TIMESTAMP"),
            ("lim", "INTEGER"),
        ],
        [(ident, *d) for ident, d in defs.items()],
    )
    engine.load("_alloc_offer_defs", [("offer", "VARCHAR"), ("id", "VARCHAR")], sorted(offer_defs))
    engine.load(
        "_alloc_offers", [("offer", "VARCHAR"), ("category", "VARCHAR")], sorted(offers.items())
    )
    used = (
        dict(inventory_used)
        if inventory_used is not None
        else _inventory_used(engine, history, inventory, now)
    )
    engine.load(
        "_alloc_inv",
        [("offer", "VARCHAR"), ("remaining", "INTEGER")],
        [
            (offer, max(0, min(limit - used.get((offer, period), 0) for period, limit in limits)))
            for offer, limits in sorted(inventory.items())
        ],
    )

    # what each recipient's history counts for each policy
    engine.create(
        "_alloc_used",
        f"""
        WITH h AS (
            SELECT profile_id, event, "at", 'offer' AS scope, offer_code AS "key"
            FROM {history}
            UNION ALL SELECT profile_id, event, "at", 'channel' AS scope, channel AS "key"
            FROM {history}
            UNION ALL SELECT profile_id, event, "at", 'category' AS scope,
                             unnest(categories) AS "key"
            FROM {history}
        )
        SELECT h.profile_id AS recipient, d.id AS id, CAST(count(*) AS INTEGER) AS n
        FROM h JOIN _alloc_defs d
          ON h.scope = d.scope AND h."key" = d."key" AND list_contains(d.events, h.event)
         AND (d.since IS NULL OR h."at" >= d.since)
        WHERE h.profile_id IN (SELECT recipient FROM _alloc_cand)
        GROUP BY h.profile_id, d.id
        """,
    )
    # filters and suppression do not change during the run: drop what they block now
    suppressed = """EXISTS (
            SELECT 1 FROM _alloc_offer_defs od
            JOIN _alloc_defs d ON d.id = od.id AND d.kind = 'suppression'
            JOIN _alloc_used u ON u.id = d.id
            WHERE od.offer = c.offer AND u.recipient = c.recipient AND u.n >= d.lim)"""
    engine.create(  # for the simulation's funnel
        "_alloc_suppressed",
        f"SELECT c.offer AS offer, c.fallback AS fallback, count(*) AS n FROM _alloc_cand c "
        f"WHERE c.allowed AND {suppressed} GROUP BY c.offer, c.fallback",
    )
    engine.create(
        "_alloc_cand", f"SELECT * FROM _alloc_cand c WHERE c.allowed AND NOT {suppressed}"
    )
    engine.load(
        "_alloc_chosen",
        [
            ("recipient", "VARCHAR"),
            ("rank", "INTEGER"),
            ("offer", "VARCHAR"),
            ("score", "DOUBLE"),
            ("fallback", "BOOLEAN"),
            ("round", "INTEGER"),
        ],
        [],
    )
    engine.load("_alloc_refused", [("recipient", "VARCHAR"), ("offer", "VARCHAR")], [])
    cap = compiled.max_per_category
    rounds = refusals = 0
    phases = (False, True) if compiled.fallbacks.get(audience) else (False,)
    for fallback in phases:  # a round over every candidate costs, even with nothing to fill
        for _ in range(n):
            rounds += 1
            refusals += _round(
                engine, rounds, n=n, fallback=fallback, cap=cap, inventory=bool(inventory)
            )
            engine.append("_alloc_chosen", "SELECT * FROM _alloc_prop")
            if on_round is not None:
                on_round(rounds, 2 * n)
            if not engine.rows("SELECT count(*) FROM _alloc_prop")[0][0]:
                break
            _spend(engine, rounds, bool(inventory))
    return Allocation(engine, "_alloc_chosen", query, n, rounds, refusals)


def _round(
    engine: SqlEngine, number: int, *, n: int, fallback: bool, cap: int | None, inventory: bool
) -> int:
    """Each recipient's choice for this round in `_alloc_prop`; returns the inventory
    refusals it took to make the choices fit the inventories."""
    order = "c.ord" if fallback else "c.score DESC, c.ord"
    category_full = (
        ""
        if fallback or cap is None
        else f"""AND (SELECT count(*) FROM _alloc_chosen x JOIN _alloc_offers xo
                     ON xo.offer = x.offer
                  WHERE x.recipient = c.recipient AND xo.category = o.category) < {cap}"""
    )
    refused = (
        """AND NOT EXISTS (SELECT 1 FROM _alloc_refused r
                           WHERE r.recipient = c.recipient AND r.offer = c.offer)
           AND NOT EXISTS (SELECT 1 FROM _alloc_inv i
                           WHERE i.offer = c.offer AND i.remaining <= 0)"""
        if inventory
        else ""
    )
    proposals = f"""
        SELECT c.recipient AS recipient, coalesce(k.taken, 0) + 1 AS rank, c.offer AS offer,
               c.score AS score, c.fallback AS fallback, {number} AS round
        FROM _alloc_cand c
        JOIN _alloc_offers o ON o.offer = c.offer
        LEFT JOIN (SELECT recipient, CAST(count(*) AS INTEGER) AS taken FROM _alloc_chosen
                   GROUP BY recipient) k ON k.recipient = c.recipient
        WHERE c.fallback = {str(fallback).upper()}
          AND coalesce(k.taken, 0) < {n}
          AND NOT EXISTS (SELECT 1 FROM _alloc_chosen x
                          WHERE x.recipient = c.recipient AND x.offer = c.offer)
          AND NOT EXISTS (
              SELECT 1 FROM _alloc_offer_defs od
              JOIN _alloc_defs d ON d.id = od.id AND d.kind = 'capping'
              JOIN _alloc_used u ON u.id = d.id
              WHERE od.offer = c.offer AND u.recipient = c.recipient AND u.n >= d.lim)
          {category_full}
          {refused}
        QUALIFY row_number() OVER (PARTITION BY c.recipient ORDER BY {order}) = 1
        """
    refusals = 0
    while True:
        engine.create("_alloc_prop", proposals)
        if not inventory:
            return refusals
        # an inventory keeps its best proposers; the others are refused and propose again
        engine.create(
            "_alloc_over",
            """
            SELECT recipient, offer FROM (
                SELECT p.recipient AS recipient, p.offer AS offer, i.remaining AS remaining,
                       row_number() OVER (PARTITION BY p.offer
                                          ORDER BY p.score DESC, p.recipient) AS pos
                FROM _alloc_prop p JOIN _alloc_inv i ON i.offer = p.offer
            ) ranked WHERE pos > remaining
            """,
        )
        over = engine.rows("SELECT count(*) FROM _alloc_over")[0][0]
        if not over:
            return refusals
        refusals += over
        engine.append("_alloc_refused", "SELECT recipient, offer FROM _alloc_over")


def _spend(engine: SqlEngine, number: int, inventory: bool) -> None:
    """This round's choices spend their capping budgets and inventories."""
    engine.create(
        "_alloc_used",
        f"""
        SELECT recipient, id, CAST(sum(n) AS INTEGER) AS n FROM (
            SELECT recipient, id, n FROM _alloc_used
            UNION ALL
            SELECT x.recipient AS recipient, od.id AS id, 1 AS n FROM _alloc_chosen x
            JOIN _alloc_offer_defs od ON od.offer = x.offer
            JOIN _alloc_defs d ON d.id = od.id AND d.kind = 'capping'
            WHERE x.round = {number}
        ) spent GROUP BY recipient, id
        """,
    )
    if inventory:
        engine.create(
            "_alloc_inv",
            f"""
            SELECT i.offer AS offer, CAST(i.remaining - coalesce(t.n, 0) AS INTEGER) AS remaining
            FROM _alloc_inv i LEFT JOIN (
                SELECT offer, count(*) AS n FROM _alloc_chosen WHERE round = {number}
                GROUP BY offer) t ON t.offer = i.offer
            """,
        )


def _inventory_used(
    engine: SqlEngine,
    history: str,
    inventory: Mapping[str, list[tuple[str, int]]],
    now: dt.datetime,
) -> dict[tuple[str, str], int]:
    """Each inventory counter's presentations, counted from the history (all profiles)."""
    if not inventory:
        return {}
    midnight = dt.datetime(now.year, now.month, now.day)
    codes = ", ".join(f"'{code}'" for code in sorted(inventory) if "'" not in code)
    rows = engine.rows(
        f"""
        SELECT offer_code,
               count(CASE WHEN "at" >= TIMESTAMP '{midnight.isoformat(sep=" ")}' THEN 1 END),
               count(*)
        FROM {history} WHERE event = 'presented' AND offer_code IN ({codes})
        GROUP BY offer_code
        """
    )
    used: dict[tuple[str, str], int] = {}
    for code, today, total in rows:
        used[(code, midnight.date().isoformat())] = today
        used[(code, "total")] = total
    return used
