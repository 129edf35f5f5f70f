"""The history: every proposition and event, and what presentation policies count of it.

The runtime records the history and reads it for each decision, a batch reads it for a
whole population and records its propositions in bulk, and reports and learning read it
next. This package is the one place that knows how: runtime, batch and design use it and
never one another's internals (docs/architecture.md).

tables.py        the tables' handles (P, E, V, INV), columns and shared statements
                 (declared with the rest of the schema in store/history.py)
windows.py       how far back a deployment's policies look (Lookback); inventory periods
counted.py       the counted history of a profile, defined once: driver SQL for one
                 profile (the runtime), set-based SQL for every profile (batch, rebuild)
deployed.py      an environment's deployment compiled (LivePlan), as every part loads it
ledger.py        what a decision reads and claims: entries, claims, the Ledger protocol
sql_ledger.py    the ledger in the database (SQLite or PostgreSQL)
redis_ledger.py  the ledger's counts and claims in Redis, the history in the database
recorder.py      group commit: many requests' writes in one transaction
rebuild.py       counters recomputed from the history (`overture counters rebuild`)
timeline.py      one profile's propositions and events, as a support desk reads them
"""
