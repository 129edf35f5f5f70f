"""Allocate the demo catalog's email slot to 5,000 generated customers on DuckDB
(docs/batch.md). Run it: python docs/examples/batch_example.py"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb

from overture.batch import allocate
from overture.catalog import load_catalog
from overture.demo import CATALOG_PATH, profiles
from overture.engine import build_plan


def main() -> dict[str, Any]:
    now = dt.datetime(2026, 6, 15, 10, 30)
    plan = build_plan(load_catalog(CATALOG_PATH), now)
    con = duckdb.connect()
    # any table or view works; the demo customers' dates count back from the run's day
    con.register("population", profiles.generate(5_000, as_of=now.date()))
    # an empty history here; any table (profile_id, event, offer_code, categories, channel,
    # at) of counted entries makes capping and suppression apply
    result = allocate(con, plan, "email_newsletter_slot", "population", 3, now=now)
    propositions = con.table(result.table)  # recipient, rank, offer, score, fallback, round, pos
    per_offer = propositions.aggregate("offer, count(*) AS n").order("n DESC, offer").fetchall()
    first = (
        propositions.filter("recipient = 'C0000007'")
        .order("rank")
        .select("rank, offer, round(score, 2)")
        .fetchall()
    )
    for offer, n in per_offer[:5]:
        print(f"{offer:<20} {n:>6}")
    print("C0000007:", first)
    return {"per_offer": dict(per_offer), "C0000007": first, "rows": len(propositions)}


if __name__ == "__main__":
    main()
