"""Allocate a placement's offers to a whole population on DuckDB (steps 3 and 5).

The candidates (candidates.py) are ranked per recipient, then chosen the way the engine
walks them: best first, skipping an offer its presentation policies block, or whose
category is full on the placement, until N are chosen; free slots are filled from the
placement's fallback offers in their order. Capping policies count the recipient's history
*plus* what this run already gave them (a category capped at 1 a week takes one offer of
it, not two), so choosing is done in rounds, each a set-based statement over every
recipient at once: round k gives every recipient its best offer still allowed, then the
run's usage is updated. An offer skipped in a round stays skipped (usage only grows), so
N rounds reproduce the engine's walk exactly.

History is a table `(profile_id, event, offer_code, categories VARCHAR[], channel, at)` of
the counted entries (propositions count as `presented`, as in the runtime).

Not yet here (issue 5, continuing): inventory policies (they are not enforced by this
module yet), rendering, tracking codes, recording, Spark.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import duckdb

from overture.batch.candidates import candidates_query
from overture.engine.plan import DecisionPlan

_EMPTY_HISTORY = (
    "SELECT NULL::VARCHAR AS profile_id, NULL::VARCHAR AS event, NULL::VARCHAR AS offer_code, "
    'NULL::VARCHAR[] AS categories, NULL::VARCHAR AS channel, NULL::TIMESTAMP AS "at" '
    "WHERE false"
)


def allocate(
    con: duckdb.DuckDBPyConnection,
    plan: DecisionPlan,
    placement: str,
    population: str,
    n: int | None = None,
    *,
    now: dt.datetime,
    history: str | None = None,
    audience: str | None = None,
    context: Mapping[str, Any] | None = None,
) -> duckdb.DuckDBPyRelation:
    """Propositions `(recipient, rank, offer, score, fallback)` for every recipient of
    `population` (a table or view in `con`), at most `n` each (the placement's maximum
    when None). Leaves temporary tables `_alloc_*` in `con`."""
    audience = audience or plan.default_audience
    compiled = plan.placements[placement]
    n = compiled.max_offers if n is None else min(n, compiled.max_offers)
    query = candidates_query(
        plan, placement, population, now=now, audience=audience, context=context
    )
    _run(con, f"CREATE OR REPLACE TEMP TABLE _alloc_cand AS {query.sql}")

    # the policies each offer is subject to on this placement, and their limits
    defs: dict[str, tuple[str, str, str, list[str], dt.datetime | None, int]] = {}
    offer_defs: set[tuple[str, str]] = set()
    offers: dict[str, str] = {}
    cands = [*compiled.candidates.get(audience, ()), *compiled.fallbacks.get(audience, ())]
    for cand in cands:
        offers[cand.offer.code] = cand.offer.category
        for policy, key in cand.policies:
            if policy.kind not in ("capping", "suppression"):
                continue
            ident = f"{policy.name}\x1f{key}"
            since = now - policy.window if policy.window is not None else None
            events = ["presented"] if policy.kind == "capping" else list(policy.events)
            defs[ident] = (policy.kind, policy.per, key, events, since, policy.limit)
            offer_defs.add((cand.offer.code, ident))
    _run(
        con,
        "CREATE OR REPLACE TEMP TABLE _alloc_defs (id VARCHAR, kind VARCHAR, scope VARCHAR, "
        "key VARCHAR, events VARCHAR[], since TIMESTAMP, lim INTEGER)",
    )
    if defs:
        _run_many(
            con,
            "INSERT INTO _alloc_defs VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(ident, *d) for ident, d in defs.items()],
        )
    _run(con, "CREATE OR REPLACE TEMP TABLE _alloc_offer_defs (offer VARCHAR, id VARCHAR)")
    if offer_defs:
        _run_many(con, "INSERT INTO _alloc_offer_defs VALUES (?, ?)", sorted(offer_defs))
    _run(con, "CREATE OR REPLACE TEMP TABLE _alloc_offers (offer VARCHAR, category VARCHAR)")
    if offers:
        _run_many(con, "INSERT INTO _alloc_offers VALUES (?, ?)", sorted(offers.items()))

    # what each recipient's history counts for each policy
    source = history or f"({_EMPTY_HISTORY})"
    _run(
        con,
        f"""
        CREATE OR REPLACE TEMP TABLE _alloc_used AS
        WITH h AS (
            SELECT profile_id, event, "at", 'offer' AS scope, offer_code AS "key" FROM {source}
            UNION ALL SELECT profile_id, event, "at", 'channel', channel FROM {source}
            UNION ALL SELECT profile_id, event, "at", 'category', unnest(categories)
            FROM {source}
        )
        SELECT h.profile_id AS recipient, d.id, count(*)::INTEGER AS n
        FROM h JOIN _alloc_defs d
          ON h.scope = d.scope AND h."key" = d."key" AND list_contains(d.events, h.event)
         AND (d.since IS NULL OR h."at" >= d.since)
        WHERE h.profile_id IN (SELECT recipient FROM _alloc_cand)
        GROUP BY ALL
        """,
    )
    # suppression does not change during the run: drop what it blocks now
    _run(
        con,
        """
        DELETE FROM _alloc_cand c WHERE NOT c.allowed OR EXISTS (
            SELECT 1 FROM _alloc_offer_defs od
            JOIN _alloc_defs d ON d.id = od.id AND d.kind = 'suppression'
            JOIN _alloc_used u ON u.id = d.id
            WHERE od.offer = c.offer AND u.recipient = c.recipient AND u.n >= d.lim)
        """,
    )
    _run(
        con,
        "CREATE OR REPLACE TEMP TABLE _alloc_chosen (recipient VARCHAR, rank INTEGER, "
        "offer VARCHAR, score DOUBLE, fallback BOOLEAN, round INTEGER)",
    )
    cap = compiled.max_per_category
    rounds = 0
    for fallback in (False, True):
        order = "c.ord" if fallback else "c.score DESC, c.ord"
        category_full = (
            ""
            if fallback or cap is None
            else f"""AND (SELECT count(*) FROM _alloc_chosen x JOIN _alloc_offers xo
                         ON xo.offer = x.offer
                      WHERE x.recipient = c.recipient AND xo.category = o.category) < {cap}"""
        )
        for _ in range(n):
            rounds += 1
            _run(
                con,
                f"""
                INSERT INTO _alloc_chosen
                SELECT c.recipient, coalesce(k.taken, 0) + 1, c.offer, c.score, c.fallback,
                       {rounds}
                FROM _alloc_cand c
                JOIN _alloc_offers o ON o.offer = c.offer
                LEFT JOIN (SELECT recipient, count(*)::INTEGER AS taken FROM _alloc_chosen
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
                QUALIFY row_number() OVER (PARTITION BY c.recipient ORDER BY {order}) = 1
                """,
            )
            picked = con.execute(
                "SELECT count(*) FROM _alloc_chosen WHERE round = ?", [rounds]
            ).fetchall()
            if not picked[0][0]:
                break
            # this round's choices spend their capping budgets
            _run(
                con,
                """
                CREATE OR REPLACE TEMP TABLE _alloc_used AS
                SELECT recipient, id, sum(n)::INTEGER AS n FROM (
                    SELECT recipient, id, n FROM _alloc_used
                    UNION ALL
                    SELECT x.recipient, od.id, 1 FROM _alloc_chosen x
                    JOIN _alloc_offer_defs od ON od.offer = x.offer
                    JOIN _alloc_defs d ON d.id = od.id AND d.kind = 'capping'
                    WHERE x.round = ?
                ) GROUP BY ALL
                """,
                [rounds],
            )
    return con.sql(
        "SELECT recipient, rank, offer, score, fallback FROM _alloc_chosen ORDER BY recipient, rank"
    )


def _run(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> None:
    """Run a statement to its end (DuckDB keeps a statement's result open until fetched)."""
    con.execute(sql, params).fetchall()


def _run_many(con: duckdb.DuckDBPyConnection, sql: str, rows: list[Any]) -> None:
    con.executemany(sql, rows).fetchall()
