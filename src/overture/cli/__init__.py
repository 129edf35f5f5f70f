"""The `overture` command.

File commands (`cli.catalog`) work on a catalog folder with nothing running. Server and
database commands (`cli.server`) run the design service and manage its database directly.
Design commands (`cli.design`) talk to a running design API with the token `overture login`
saved: the API checks the operator's role, validates and audits, so the command line gets
exactly what any other client gets; `cli.keys` manages runtime API keys the same way, or
with --database on the database directly, as `cli.users` manages operators.
`cli.counters` rebuilds the counters from the history, on the database directly.
"""

from __future__ import annotations

from overture.cli import (
    batch,
    catalog,
    counters,
    design,
    keys,
    report,
    server,
    traffic,
    users,
)
from overture.cli._app import app

__all__ = [
    "app",
    "batch",
    "catalog",
    "counters",
    "design",
    "keys",
    "main",
    "report",
    "server",
    "traffic",
    "users",
]


def main() -> None:
    app()
