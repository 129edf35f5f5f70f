"""Allocation over each recipient's ranked list: DuckDB's fast path, same choices as rows.py.

rows.py materialises a row per (recipient, candidate) - 150 M for a million recipients and
500 offers - and sorts them all again in every round. Here the population is read once
(candidates.py's `lists_sql`): each recipient's candidates come out as one list, sorted in
the engine's order (score, then tie-break order) within the row. Only the first `prefix`
of them become rows (`_alloc_top`, with their place `pos` in the list), and a round is a
`min(pos)` per recipient over a few rows each instead of a window over all of them:

- what the history alone rules out (capping used up, suppression) is dropped from the
  rows once when it concerns one offer (`_alloc_blocked`), and closes a shared policy
  (`_alloc_closed0`) when it concerns a category or a channel;
- an offer passed over stays passed over (usage, full categories and inventory refusals
  only grow), so a round looks only past the recipient's last choice;
- what closes an offer during the run is a shared cap (a category's, a channel's) reached
  with the run's own propositions (`_alloc_closed`; `_alloc_closed_bits` is it as a bit
  set per recipient), a full
  category (`_alloc_full`), an inventory that ran out or refused the recipient: each an
  anti-join on a small table;
- a recipient whose rows are all closed while it still has slots gets the rest of its
  list as rows (the tail, kept in `_alloc_lists`): rare, and the result stays exact.

Recipients, offers, categories and caps are small integers inside (`rid`, `oid`, `cat`,
`cap`): the rounds join on them, which is twice as fast as on the ids. Each round's
choices are written back as ids to `_alloc_prop` and `_alloc_chosen`, the tables
policies.py and the figures read, as rows.py leaves them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from overture.batch.candidates import CandidateQuery
from overture.batch.engines import DuckDBEngine
from overture.batch.policies import refuse_over_inventory, spend_inventory

PREFIX = 16  # ranked candidates per recipient made rows at first (the tail comes if needed)
# a recipient's number is its row's in _alloc_lists (row_number() would run the lists on
# one thread); the table is made once and never changed, so the numbers hold
_NUMBERED = "(SELECT CAST(rowid AS INTEGER) AS rid, * FROM _alloc_lists)"
_OUT = (  # the offers whose inventory has run out
    "SELECT o.oid FROM _alloc_inv i JOIN _alloc_oid o ON o.offer = i.offer WHERE i.remaining <= 0"
)


def allocate_lists(
    engine: DuckDBEngine,
    query: CandidateQuery,
    n: int,
    *,
    per_category: int | None,
    inventory: bool,
    fallbacks: bool,
    on_round: Callable[[int, int], None] | None,
    prefix: int = PREFIX,
) -> tuple[int, int]:
    """Choose into `_alloc_chosen`; returns (rounds run, inventory refusals)."""
    words = _numbers(engine, query)
    engine.create(
        "_alloc_lists",
        f"SELECT recipient, list_sort(ranked) AS ranked, fallbacks FROM ({query.lists_sql()})",
    )
    engine.create("_alloc_rid", f"SELECT rid, recipient FROM {_NUMBERED}")
    # what the history alone rules out for the run (caps used up, suppression): per offer,
    # pairs; shared by several offers (a category's, a channel's), closed caps
    engine.create(
        "_alloc_blocked",
        """
        SELECT DISTINCT r.rid AS rid, o.oid AS oid FROM _alloc_used u
        JOIN _alloc_defs d ON d.id = u.id AND u.n >= d.lim AND d.scope = 'offer'
        JOIN _alloc_offer_defs od ON od.id = d.id
        JOIN _alloc_oid o ON o.offer = od.offer
        JOIN _alloc_rid r ON r.recipient = u.recipient
        """,
    )
    engine.create(
        "_alloc_shared_used",
        "SELECT r.rid AS rid, c.cap AS cap, u.n AS n FROM _alloc_used u "
        "JOIN _alloc_shared c ON c.id = u.id JOIN _alloc_rid r ON r.recipient = u.recipient",
    )
    engine.create(
        "_alloc_closed0",
        "SELECT u.rid AS rid, u.cap AS cap FROM _alloc_shared_used u "
        "JOIN _alloc_shared c ON c.cap = u.cap WHERE u.n >= c.lim",
    )
    if words:
        engine.create("_alloc_closed_bits", _bits(words, "rid", "SELECT * FROM _alloc_closed0"))
    engine.create(
        "_alloc_top",
        _rows(f"SELECT rid, list_slice(ranked, 1, {prefix}) AS top FROM {_NUMBERED}", 0)
        + " UNION ALL "
        + _fallback_rows(_NUMBERED),
    )
    engine.create(  # those with more than the prefix: the rest of their list may be needed
        "_alloc_more", f"SELECT rid FROM {_NUMBERED} WHERE len(ranked) > {prefix}"
    )
    engine.load(
        "_alloc_pick",
        [
            ("rid", "INTEGER"),
            ("oid", "INTEGER"),
            ("cat", "INTEGER"),
            ("pos", "INTEGER"),
            ("fallback", "BOOLEAN"),
        ],
        [],
    )
    engine.load("_alloc_expanded", [("rid", "INTEGER")], [])  # whose tail is in _alloc_top
    engine.load("_alloc_refused_i", [("rid", "INTEGER"), ("oid", "INTEGER")], [])
    engine.load("_alloc_full", [("rid", "INTEGER"), ("cat", "INTEGER")], [])
    engine.create("_alloc_out", _OUT)
    rounds = refusals = 0
    for fallback in (False, True) if fallbacks else (False,):
        for _ in range(n):
            rounds += 1
            propose = functools.partial(
                _proposals,
                n=n,
                fallback=fallback,
                per_category=per_category is not None and not fallback,
                inventory=inventory,
                words=words,
            )
            engine.create("_alloc_pp", propose())
            while True:
                # only those whose proposal changes propose again: the recipients whose
                # rows ran out (their tail joins the rows) and those an inventory refused
                while not fallback and _expand(engine, n, prefix):
                    engine.append("_alloc_pp", propose(only="_alloc_short"))
                engine.create(
                    "_alloc_prop",
                    "SELECT r.recipient AS recipient, p.rank AS rank, o.offer AS offer, "
                    f"p.score AS score, {str(fallback).upper()} AS fallback, {rounds} AS round, "
                    "p.pos AS pos FROM _alloc_pp p JOIN _alloc_rid r ON r.rid = p.rid "
                    "JOIN _alloc_oid o ON o.oid = p.oid",
                )
                if not inventory:
                    break
                over = refuse_over_inventory(engine)
                if not over:
                    break
                refusals += over
                engine.create(
                    "_alloc_redo",
                    "SELECT r.rid AS rid, o.oid AS oid FROM _alloc_over v "
                    "JOIN _alloc_rid r ON r.recipient = v.recipient "
                    "JOIN _alloc_oid o ON o.offer = v.offer",
                )
                engine.append("_alloc_refused_i", "SELECT rid, oid FROM _alloc_redo")
                engine.create(
                    "_alloc_pp", "SELECT * FROM _alloc_pp ANTI JOIN _alloc_redo USING (rid)"
                )
                engine.append("_alloc_pp", propose(only="_alloc_redo"))
            engine.append("_alloc_chosen", "SELECT * FROM _alloc_prop")
            engine.append(
                "_alloc_pick",
                f"SELECT rid, oid, cat, pos, {str(fallback).upper()} FROM _alloc_pp",
            )
            if on_round is not None:
                on_round(rounds, 2 * n)
            if not engine.rows("SELECT count(*) FROM _alloc_pp")[0][0]:
                break
            _spend(engine, rounds, per_category=per_category, inventory=inventory, words=words)
    return rounds, refusals


def _numbers(engine: DuckDBEngine, query: CandidateQuery) -> int:
    """Offers (`_alloc_oid`), list indexes (`_alloc_idx`) and shared policies
    (`_alloc_shared`, `_alloc_offer_shared`, `_alloc_offer_bits`) as small integers. Shared
    policies are the capping and suppression counted per category or per channel (so
    that, usually, several offers share them): an offer's are a bit set, in words of 63
    bits; returns how many words (0: none). The rest are per offer: the run's own use of
    a per-offer cap only ever closes the offer it gave, which is out already."""
    engine.create(
        "_alloc_oid",
        "SELECT offer, CAST(row_number() OVER (ORDER BY offer) AS INTEGER) AS oid, "
        "CAST(dense_rank() OVER (ORDER BY category) AS INTEGER) AS cat FROM _alloc_offers",
    )
    engine.load(
        "_alloc_idx",
        [("idx", "INTEGER"), ("offer", "VARCHAR"), ("ord", "INTEGER"), ("fallback", "BOOLEAN")],
        [(i, c.code, c.ord, False) for i, c in enumerate(query.ranked, 1)]
        + [(i, c.code, c.ord, True) for i, c in enumerate(query.fallbacks, 1)],
    )
    engine.create(
        "_alloc_idx", "SELECT x.*, o.oid, o.cat FROM _alloc_idx x JOIN _alloc_oid o USING (offer)"
    )
    engine.create(
        "_alloc_shared",
        "SELECT CAST(row_number() OVER (ORDER BY id) AS INTEGER) AS cap, id, kind, lim "
        "FROM _alloc_defs WHERE scope <> 'offer'",
    )
    engine.create(
        "_alloc_offer_shared",
        "SELECT o.oid AS oid, c.cap AS cap FROM _alloc_offer_defs od "
        "JOIN _alloc_shared c ON c.id = od.id JOIN _alloc_oid o ON o.offer = od.offer",
    )
    caps = engine.rows("SELECT max(cap) FROM _alloc_offer_shared")[0][0]
    words = 0 if caps is None else (caps - 1) // 63 + 1
    if words:
        engine.create("_alloc_offer_bits", _bits(words, "oid", "SELECT * FROM _alloc_offer_shared"))
    return int(words)


def _rows(tops: str, base: int) -> str:
    """The rows of ranked lists (`tops`: rid, top), pos counted from `base`, but for
    what the history has ruled out."""
    return f"""
        SELECT t.rid AS rid, CAST({base} + t.p AS INTEGER) AS pos, x.oid AS oid,
               -t.e.ns AS score, false AS fallback, x.cat AS cat
        FROM (SELECT l.rid, unnest(l.top) AS e, unnest(range(1, len(l.top) + 1)) AS p
              FROM ({tops}) l) t
        JOIN _alloc_idx x ON x.idx = t.e.i AND NOT x.fallback
        ANTI JOIN _alloc_blocked b ON b.rid = t.rid AND b.oid = x.oid
        """


def _fallback_rows(lists: str) -> str:
    """The rows of the recipients' fallbacks (pos: the fill order), the same way."""
    return f"""
        SELECT f.rid AS rid, x.ord AS pos, x.oid AS oid, CAST(0 AS DOUBLE) AS score,
               true AS fallback, x.cat AS cat
        FROM (SELECT rid, unnest(fallbacks) AS i FROM {lists}) f
        JOIN _alloc_idx x ON x.idx = f.i AND x.fallback
        ANTI JOIN _alloc_blocked b ON b.rid = f.rid AND b.oid = x.oid
        """


def _proposals(
    *,
    n: int,
    fallback: bool,
    per_category: bool,
    inventory: bool,
    words: int,
    only: str | None = None,
) -> str:
    """Each recipient's first candidate still open: this round's proposals (of the
    recipients in table `only`, when given)."""
    live = [f"c.fallback = {str(fallback).upper()}", f"coalesce(k.taken, 0) < {n}"]
    if not fallback:  # what lies before the last choice was chosen or closed for good
        live.append("c.pos > coalesce(k.last, 0)")
    joins = "" if only is None else f"SEMI JOIN {only} o ON o.rid = c.rid"
    if words:  # no shared policy of the offer closed for the recipient (bit sets)
        joins += (
            " LEFT JOIN _alloc_offer_bits ob ON ob.oid = c.oid"
            " LEFT JOIN _alloc_closed_bits cb ON cb.rid = c.rid"
        )
        live += [f"(coalesce(ob.b{w}, 0) & coalesce(cb.b{w}, 0)) = 0" for w in range(words)]
    closed = []
    if fallback:  # a fallback may be an offer the recipient already has
        closed.append("ANTI JOIN _alloc_pick x ON x.rid = l.rid AND x.oid = l.oid")
    if per_category:
        closed.append("ANTI JOIN _alloc_full f ON f.rid = l.rid AND f.cat = l.cat")
    if inventory:
        closed.append("ANTI JOIN _alloc_refused_i r ON r.rid = l.rid AND r.oid = l.oid")
        closed.append("ANTI JOIN _alloc_out o ON o.oid = l.oid")
    closing = "\n            ".join(closed)
    return f"""
        WITH k AS (
            SELECT rid, CAST(count(*) AS INTEGER) AS taken,
                   max(pos) FILTER (WHERE NOT fallback) AS last
            FROM _alloc_pick GROUP BY rid),
        live AS (
            SELECT c.rid, c.pos, c.oid, c.score, c.cat, coalesce(k.taken, 0) AS taken
            FROM _alloc_top c LEFT JOIN k ON k.rid = c.rid {joins}
            WHERE {" AND ".join(live)})
        SELECT l.rid AS rid, CAST(any_value(l.taken) + 1 AS INTEGER) AS rank,
               min(l.pos) AS pos, arg_min(l.oid, l.pos) AS oid,
               arg_min(l.score, l.pos) AS score, arg_min(l.cat, l.pos) AS cat
        FROM live l
            {closing}
        GROUP BY l.rid
        """


def _bits(words: int, key: str, source: str) -> str:
    """`source`'s caps (key, cap) as bit sets per key: cap c is bit (c-1) % 63 of word
    b{(c-1) // 63}."""
    sets = ", ".join(
        f"bit_or(CASE WHEN (cap - 1) // 63 = {w} THEN CAST(1 AS BIGINT) << ((cap - 1) % 63) "
        f"ELSE 0 END) AS b{w}"
        for w in range(words)
    )
    return f"SELECT {key}, {sets} FROM ({source}) GROUP BY {key}"


def _spend(
    engine: DuckDBEngine, number: int, *, per_category: int | None, inventory: bool, words: int
) -> None:
    """What round `number`'s choices close: shared caps reached (with the history's
    usage), full categories, inventories run out."""
    if words:
        engine.create(
            "_alloc_closed",
            """
            WITH r AS (
                SELECT p.rid AS rid, oc.cap AS cap, count(*) AS n FROM _alloc_pick p
                JOIN _alloc_offer_shared oc ON oc.oid = p.oid GROUP BY ALL)
            SELECT rid, cap FROM _alloc_closed0
            UNION
            SELECT r.rid AS rid, r.cap AS cap FROM r
            JOIN _alloc_shared c ON c.cap = r.cap AND c.kind = 'capping'
            LEFT JOIN _alloc_shared_used u ON u.rid = r.rid AND u.cap = r.cap
            WHERE coalesce(u.n, 0) + r.n >= c.lim
            """,
        )
        engine.create("_alloc_closed_bits", _bits(words, "rid", "SELECT * FROM _alloc_closed"))
    if per_category is not None:
        engine.create(
            "_alloc_full",
            "SELECT rid, cat FROM _alloc_pick WHERE NOT fallback "
            f"GROUP BY rid, cat HAVING count(*) >= {per_category}",
        )
    if inventory:
        spend_inventory(engine, number)
        engine.create("_alloc_out", _OUT)


def _expand(engine: DuckDBEngine, n: int, prefix: int) -> int:
    """Recipients short of n, without a proposal this round and with candidates beyond
    their rows: the rest of their list joins `_alloc_top`. Returns how many (0: none)."""
    engine.create(
        "_alloc_short",
        f"""
        SELECT l.rid AS rid FROM _alloc_more l
        LEFT JOIN (SELECT rid, count(*) AS taken FROM _alloc_pick GROUP BY rid) k
          ON k.rid = l.rid
        ANTI JOIN _alloc_pp p ON p.rid = l.rid
        ANTI JOIN _alloc_expanded x ON x.rid = l.rid
        WHERE coalesce(k.taken, 0) < {n}
        """,
    )
    short: int = engine.rows("SELECT count(*) FROM _alloc_short")[0][0]
    if short:
        engine.append(
            "_alloc_top",
            _rows(
                f"SELECT l.rid, list_slice(l.ranked, {prefix + 1}, len(l.ranked)) AS top "
                f"FROM {_NUMBERED} l SEMI JOIN _alloc_short s ON s.rid = l.rid",
                prefix,
            ),
        )
        engine.append("_alloc_expanded", "SELECT rid FROM _alloc_short")
    return short
