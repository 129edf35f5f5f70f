"""A placement's presentation policies as the tables a batch allocation reads.

Both ways of allocating (rows.py, anywhere; lists.py, DuckDB's fast path) choose in rounds
and read the same tables, made here once per run:

- `_alloc_defs`        each capping and suppression policy (per key) and its limit;
- `_alloc_offer_defs`  which of them each offer is subject to on this placement;
- `_alloc_offers`      each candidate offer's category (for max_per_category);
- `_alloc_used`        what each recipient's history counts for each policy (the history
                       only: the run's own propositions are added by the rounds);
- `_alloc_inv`         each inventory-limited offer's presentations left;
- `_alloc_chosen`      the propositions chosen so far (RESULT_COLUMNS, round, pos);
- `_alloc_refused`     (recipient, offer) pairs an inventory refused.

Inventory is exact and goes to the highest scorers: within a round every recipient
proposes its best allowed offer; an offer with R presentations left keeps the R proposers
who score it highest (ties: the smaller recipient id) and refuses the others, who propose
their next offer in the same round, which may bump a lower scorer elsewhere (deferred
acceptance, as in Gale-Shapley; it ends because refusals only grow).

History is a table `(profile_id, event, offer_code, categories VARCHAR[], channel, at)` of
the counted entries (history/counted.py: propositions count as `presented`, as in the
runtime; ledger.read_history reads it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from overture.batch.engines import SqlEngine
from overture.engine.compiled import CompiledPlacement
from overture.engine.history import inventory_since
from overture.history.windows import inventory_period

HISTORY_COLUMNS = (
    ("profile_id", "VARCHAR"),
    ("event", "VARCHAR"),
    ("offer_code", "VARCHAR"),
    ("categories", "VARCHAR[]"),
    ("channel", "VARCHAR"),
    ("at", "TIMESTAMP"),
)
CHOSEN_COLUMNS = (
    ("recipient", "VARCHAR"),
    ("rank", "INTEGER"),
    ("offer", "VARCHAR"),
    ("score", "DOUBLE"),
    ("fallback", "BOOLEAN"),
    ("round", "INTEGER"),
    ("pos", "INTEGER"),  # lists.py: the choice's place in the recipient's ranked list
)


def load_policies(
    engine: SqlEngine,
    compiled: CompiledPlacement,
    audience: str,
    *,
    now: dt.datetime,
    history: str | None,
    inventory_used: Mapping[tuple[str, str], int] | None,
    recipients: str,
) -> bool:
    """Make the tables above; `recipients` is a query of the population's ids (the
    history is read for them only). Returns whether any offer has an inventory."""
    if history is None:
        engine.load("_alloc_history", HISTORY_COLUMNS, [])
        history = "_alloc_history"
    defs: dict[str, tuple[str, str, str, list[str], dt.datetime | None, int]] = {}
    offer_defs: set[tuple[str, str]] = set()
    offers: dict[str, str] = {}
    inventory: dict[str, list[tuple[str, int]]] = {}  # offer -> (period, limit)
    cands = [*compiled.candidates.get(audience, ()), *compiled.fallbacks.get(audience, ())]
    for cand in cands:
        offers[cand.offer.code] = cand.offer.category
        for policy, key in cand.policies:
            if policy.kind == "inventory":
                period = inventory_period(inventory_since(policy.per, now))
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
        WHERE h.profile_id IN ({recipients})
        GROUP BY h.profile_id, d.id
        """,
    )
    engine.load("_alloc_chosen", CHOSEN_COLUMNS, [])
    engine.load("_alloc_refused", [("recipient", "VARCHAR"), ("offer", "VARCHAR")], [])
    return bool(inventory)


def used_up(kind: str, usage: str) -> str:
    """A condition on a candidate row `c` (recipient, offer): some `kind` policy of the
    offer is used up for the recipient, as `usage` (recipient, id, n) counts."""
    return f"""EXISTS (
        SELECT 1 FROM _alloc_offer_defs od
        JOIN _alloc_defs d ON d.id = od.id AND d.kind = '{kind}'
        JOIN {usage} u ON u.id = d.id
        WHERE od.offer = c.offer AND u.recipient = c.recipient AND u.n >= d.lim)"""


def with_run(usage: str, rounds: str = "") -> str:
    """`usage` (recipient, id, n) plus the capping the run's propositions (`_alloc_chosen`,
    those `rounds` selects: a condition on its rows `x`) have used."""
    where = f"WHERE {rounds}" if rounds else ""
    return f"""
        SELECT recipient, id, CAST(sum(n) AS INTEGER) AS n FROM (
            SELECT recipient, id, n FROM {usage}
            UNION ALL
            SELECT x.recipient AS recipient, od.id AS id, 1 AS n FROM _alloc_chosen x
            JOIN _alloc_offer_defs od ON od.offer = x.offer
            JOIN _alloc_defs d ON d.id = od.id AND d.kind = 'capping'
            {where}
        ) spent GROUP BY recipient, id
        """


def refuse_over_inventory(engine: SqlEngine) -> int:
    """Refuse the proposals (`_alloc_prop`) an inventory cannot take, the lowest scorers
    first, into `_alloc_refused`; returns how many (0: the round's choices fit)."""
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
    over: int = engine.rows("SELECT count(*) FROM _alloc_over")[0][0]
    if over:
        engine.append("_alloc_refused", "SELECT recipient, offer FROM _alloc_over")
    return over


def spend_inventory(engine: SqlEngine, number: int) -> None:
    """Round `number`'s choices spend their offers' inventories."""
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
    midnight = inventory_since("day", now)
    assert midnight is not None
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
        used[(code, inventory_period(midnight))] = today
        used[(code, inventory_period(None))] = total
    return used
