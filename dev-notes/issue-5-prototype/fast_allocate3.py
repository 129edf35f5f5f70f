"""Prototype of a faster allocate (same results): the candidates are streamed once into a
per-recipient top-K prefix (no 150M-row table, no per-round sort); rounds run on the prefix;
a recipient whose prefix is all blocked gets the rest of its list (exact)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import duckdb

from overture.batch.allocate import (
    HISTORY_COLUMNS,
    Allocation,
    _inventory_used,
    inventory_period,
)
from overture.batch.candidates import candidates_query
from list_candidates import score_list_sql
from overture.batch.engines import DuckDBEngine, SqlEngine
from overture.engine.plan import DecisionPlan

PREFIX = 16  # candidates per recipient kept for the rounds (more are fetched when needed)


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
    prefix: int = PREFIX,
) -> Allocation:
    if isinstance(engine, duckdb.DuckDBPyConnection):
        engine = DuckDBEngine(engine)
    audience = audience or plan.default_audience
    info = plan.audiences[audience]
    compiled = plan.placements[placement]
    n = compiled.max_offers if n is None else min(n, compiled.max_offers)
    query = candidates_query(
        plan, placement, population, now=now, audience=audience, context=context,
        dialect=engine.dialect,
    )
    if history is None:
        engine.load("_alloc_history", HISTORY_COLUMNS, [])
        history = "_alloc_history"

    defs: dict[str, tuple[str, str, str, list[str], dt.datetime | None, int]] = {}
    offer_defs: set[tuple[str, str]] = set()
    offers: dict[str, str] = {}
    inventory: dict[str, list[tuple[str, int]]] = {}
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
        [("id", "VARCHAR"), ("kind", "VARCHAR"), ("scope", "VARCHAR"), ("key", "VARCHAR"),
         ("events", "VARCHAR[]"), ("since", "TIMESTAMP"), ("lim", "INTEGER")],
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
    ids = f'SELECT "{info.id_field}" FROM {population}'
    # the history's usage, only for the policies' keys (CHANGE: filtered on the population,
    # not on the candidates, which are no longer a table)
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
        WHERE h.profile_id IN ({ids})
        GROUP BY h.profile_id, d.id
        """,
    )
    # suppression is fixed for the run: the (recipient, offer) pairs it blocks (small)
    engine.create(
        "_alloc_blocked",
        """
        SELECT u.recipient AS recipient, od.offer AS offer,
               bool_or(d.kind = 'suppression') AS supp
        FROM _alloc_used u
        JOIN _alloc_defs d ON d.id = u.id AND u.n >= d.lim
        JOIN _alloc_offer_defs od ON od.id = d.id
        GROUP BY ALL
        """,
    )
    # the ranked candidates as ONE pass over the population: per recipient the list of
    # scores of every offer of the placement (NULL: not a candidate), cut to its best
    # `prefix` in the engine's order (score desc, ord) - exact: the index is the tie-break
    assert not compiled.fallbacks.get(audience), "prototype: no fallbacks"
    sql, codes, ords = score_list_sql(
        plan, placement, population, now=now, audience=audience, context=context,
        dialect=engine.dialect,
    )
    engine.load(
        "_alloc_idx",
        [("idx", "INTEGER"), ("offer", "VARCHAR"), ("ord", "INTEGER")],
        [(i + 1, code, o) for i, (code, o) in enumerate(zip(codes, ords))],
    )
    engine.create(
        "_alloc_blocked_idx",
        "SELECT b.recipient AS recipient, list(x.idx) AS idx, "
        "list(x.idx) FILTER (WHERE b.supp) AS supp FROM _alloc_blocked b "
        "JOIN _alloc_idx x ON x.offer = b.offer GROUP BY b.recipient",
    )
    lists = lambda source, first, last: f"""
        SELECT recipient, len(srt) AS ranked, list_slice(srt, {first}, {last}) AS top, supp
        FROM (
            SELECT s.recipient AS recipient,
                   list_sort(list_filter(list_transform(s.scores, lambda x, i:
                       CASE WHEN x IS NOT NULL AND NOT list_contains(coalesce(b.idx, []), i)
                            THEN {{'ns': -x, 'i': i}} END), lambda y: y IS NOT NULL)) AS srt,
                   list_filter(coalesce(b.supp, []), lambda i: s.scores[i] IS NOT NULL) AS supp
            FROM ({source}) s LEFT JOIN _alloc_blocked_idx b ON b.recipient = s.recipient)
        """
    engine.create("_alloc_lists", lists(sql, 1, prefix))
    engine.create(
        "_alloc_suppressed",
        "SELECT x.offer AS offer, false AS fallback, count(*) AS n FROM "
        "(SELECT unnest(supp) AS i FROM _alloc_lists) s JOIN _alloc_idx x ON x.idx = s.i "
        "GROUP BY ALL",
    )
    unnest = lambda table, base: f"""
        SELECT t.recipient AS recipient, x.offer AS offer, -t.e.ns AS score, x.ord AS ord,
               false AS fallback, CAST({base} + t.p AS INTEGER) AS pos
        FROM (SELECT l.*, unnest(l.top) AS e, unnest(range(1, len(l.top) + 1)) AS p
              FROM {table} l) t
        JOIN _alloc_idx x ON x.idx = t.e.i
        """
    engine.create("_alloc_top", unnest("_alloc_lists", "0"))
    engine.create(
        "_alloc_more",
        "SELECT recipient, CAST(len(top) AS INTEGER) AS kept FROM _alloc_lists "
        "WHERE ranked > len(top)",
    )
    engine.create("_alloc_lists", "SELECT * FROM _alloc_lists WHERE false")  # free it
    engine.load(
        "_alloc_chosen",
        [("recipient", "VARCHAR"), ("rank", "INTEGER"), ("offer", "VARCHAR"), ("score", "DOUBLE"),
         ("fallback", "BOOLEAN"), ("round", "INTEGER"), ("pos", "INTEGER")],
        [],
    )
    engine.load("_alloc_capped", [("recipient", "VARCHAR"), ("id", "VARCHAR")], [])
    # capping shared by several offers (a category, a channel): the run's own usage of a
    # per-offer cap only ever blocks the offer it gave, which is out already
    engine.create(
        "_alloc_shared_caps",
        "SELECT od.offer AS offer, od.id AS id FROM _alloc_offer_defs od JOIN _alloc_defs d "
        "ON d.id = od.id AND d.kind = 'capping' AND d.scope <> 'offer'",
    )
    engine.load("_alloc_refused", [("recipient", "VARCHAR"), ("offer", "VARCHAR")], [])
    cap = compiled.max_per_category
    rounds = refusals = 0
    tail = _Tail(engine, plan, placement, population, info.id_field, now, audience, context)
    tail.lists = lists
    tail.main_sql = sql
    tail.unnest = unnest
    for fallback in (False, True):
        for _ in range(n):
            rounds += 1
            refusals += _round(
                engine, rounds, n=n, fallback=fallback, cap=cap, inventory=bool(inventory),
                tail=tail,
            )
            engine.append("_alloc_chosen", "SELECT * FROM _alloc_prop")
            if on_round is not None:
                on_round(rounds, 2 * n)
            if not engine.rows("SELECT count(*) FROM _alloc_prop")[0][0]:
                break
            _spend(engine, rounds, bool(inventory))
    tail_count[0] = tail.expanded
    return Allocation(engine, "_alloc_chosen", query, n, rounds, refusals)


tail_count = [0]


class _Tail:
    """Fetches the rest of the ranked list of recipients whose prefix is all blocked."""

    def __init__(self, engine: SqlEngine, plan: DecisionPlan, placement: str, population: str,
                 id_field: str, now: dt.datetime, audience: str,
                 context: Mapping[str, Any] | None) -> None:
        self.engine = engine
        self.plan = plan
        self.placement = placement
        self.population = population
        self.id_field = id_field
        self.now = now
        self.audience = audience
        self.context = context
        self.expanded = 0
        self.sql: str | None = None

    def expand(self, n: int) -> int:
        """Recipients still short of n, with no proposal and more candidates: their whole
        ranked list in _alloc_top. Returns how many."""
        e = self.engine
        e.create(
            "_alloc_short",
            f"""
            SELECT m.recipient AS recipient, m.kept AS kept FROM _alloc_more m
            LEFT JOIN (SELECT recipient, count(*) AS taken FROM _alloc_chosen GROUP BY recipient)
                k ON k.recipient = m.recipient
            WHERE coalesce(k.taken, 0) < {n}
              AND NOT EXISTS (SELECT 1 FROM _alloc_prop p WHERE p.recipient = m.recipient)
            """,
        )
        short = e.rows("SELECT count(*) FROM _alloc_short")[0][0]
        if not short:
            return 0
        self.expanded += short
        e.create(
            "_alloc_tail_pop",
            f'SELECT * FROM {self.population} WHERE "{self.id_field}" IN '
            f"(SELECT recipient FROM _alloc_short)",
        )
        if self.sql is None:  # the main query, over whoever is in _alloc_tail_pop
            assert self.main_sql.count(f"FROM {self.population}") == 1
            self.sql = self.main_sql.replace(f"FROM {self.population}", "FROM _alloc_tail_pop")
        e.create("_alloc_tail_lists", self.lists(self.sql, 1, 100000))
        e.create(
            "_alloc_tail_lists",
            "SELECT l.recipient, l.ranked, list_slice(l.top, s.kept + 1, 100000) AS top, "
            "s.kept AS kept FROM _alloc_tail_lists l JOIN _alloc_short s "
            "ON s.recipient = l.recipient",
        )
        e.append("_alloc_top", self.unnest("_alloc_tail_lists", "t.kept"))
        e.create(
            "_alloc_more",
            "SELECT * FROM _alloc_more m WHERE m.recipient NOT IN "
            "(SELECT recipient FROM _alloc_short)",
        )
        return short


def _round(engine: SqlEngine, number: int, *, n: int, fallback: bool, cap: int | None,
           inventory: bool, tail: _Tail) -> int:
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
    fb = str(fallback).upper()
    after = "" if fallback else "AND c.pos > coalesce(k.last, 0)"  # earlier rows are dead
    chosen = (
        "ANTI JOIN _alloc_chosen x ON x.recipient = l.recipient AND x.offer = l.offer"
        if fallback else ""
    )
    refused_join = (
        "ANTI JOIN _alloc_refused r ON r.recipient = l.recipient AND r.offer = l.offer"
        if inventory else ""
    )
    out_of_stock = (
        "AND l.offer NOT IN (SELECT offer FROM _alloc_inv WHERE remaining <= 0)"
        if inventory else ""
    )
    category_full = category_full.replace("c.recipient", "l.recipient")
    proposals = f"""
        WITH k AS (SELECT recipient, CAST(count(*) AS INTEGER) AS taken,
                          max(pos) FILTER (WHERE NOT fallback) AS last
                   FROM _alloc_chosen GROUP BY recipient),
        live AS (
            SELECT c.*, coalesce(k.taken, 0) AS taken FROM _alloc_top c
            LEFT JOIN k ON k.recipient = c.recipient
            WHERE c.fallback = {fb} AND coalesce(k.taken, 0) < {n} {after}),
        dead AS (  -- capped by what the run gave (the history's capping is in the lists)
            SELECT DISTINCT l.recipient AS recipient, l.offer AS offer FROM live l
            JOIN _alloc_shared_caps od ON od.offer = l.offer
            SEMI JOIN _alloc_capped cn ON cn.recipient = l.recipient AND cn.id = od.id),
        best AS (
            SELECT l.recipient AS recipient, min(l.pos) AS pos FROM live l
            JOIN _alloc_offers o ON o.offer = l.offer
            ANTI JOIN dead ON dead.recipient = l.recipient AND dead.offer = l.offer
            {chosen}
            {refused_join}
            WHERE true {out_of_stock}
            {category_full}
            GROUP BY l.recipient)
        SELECT l.recipient AS recipient, l.taken + 1 AS rank, l.offer AS offer,
               l.score AS score, l.fallback AS fallback, {number} AS round, l.pos AS pos
        FROM best b JOIN live l ON l.recipient = b.recipient AND l.pos = b.pos
        """
    refusals = 0
    while True:
        engine.create("_alloc_prop", proposals)
        if not fallback:
            while tail.expand(n):
                engine.create("_alloc_prop", proposals)
        if not inventory:
            return refusals
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
    """The run's capping usage, and the budgets it has used up (with the history's)."""
    engine.create(
        "_alloc_capped",
        """
        WITH r AS (
            SELECT x.recipient AS recipient, od.id AS id, count(*) AS n FROM _alloc_chosen x
            JOIN _alloc_offer_defs od ON od.offer = x.offer
            JOIN _alloc_defs d ON d.id = od.id AND d.kind = 'capping'
            GROUP BY ALL)
        SELECT r.recipient AS recipient, r.id AS id FROM r
        JOIN _alloc_defs d ON d.id = r.id AND d.scope <> 'offer'
        LEFT JOIN _alloc_used u ON u.recipient = r.recipient AND u.id = r.id
        WHERE coalesce(u.n, 0) + r.n >= d.lim
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
