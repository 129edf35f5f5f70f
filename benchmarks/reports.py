"""Reports benchmark: offer performance pages over 10 million history rows, and what
keeping the rollup costs the runtime.

    python -m benchmarks.reports [--rows 10000000] [--days 90] [--skip-runtime]

1. Generates the history of the demo catalog's 36 offers on its 8 placements over the last
   90 days (propositions, then presentations, acceptances and rejections of them, about
   two thirds propositions), seeded, straight into the tables, on SQLite and (when
   PostgreSQL answers: tests/integration.py) on PostgreSQL; rebuilds the daily rollup from
   it (timed); then, warm, the server time of each console report page for the last 30
   days over all offers (an in-process request of the console, rendering included) and the
   time of its queries alone (history.reports.report). Aim: each page under 1 s.
2. The runtime's cost of the rollup: the same decisions and events through a node's
   service (in process, one core, SQLite, 32 requests in flight as the runtime benchmark's
   32 connections), with the rollup kept and without it, and the decisions/s and events/s
   of each.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import functools
import os
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import msgspec
import numpy as np
from starlette.testclient import TestClient

from overture.catalog import load_catalog
from overture.demo import CATALOG_PATH, profiles
from overture.design import access, deployments, transfer
from overture.history import reports, rollups
from overture.history.reports import Dimension, Period
from overture.history.tables import EVENT_COLUMNS, PROPOSITION_COLUMNS, join_categories
from overture.runtime.node import RuntimeNode, RuntimeSettings
from overture.runtime.schemas import DecisionIn, EventIn
from overture.server import people_app
from overture.store import Database
from overture.store.profiles import load_rows
from tests.design.helpers import ADMIN, DEPLOYER, approve_all, demo_files

PAGES = ["performance", *(f"performance/{v}" for v in reports.DIMENSIONS)]
PASSWORD = "benchmark password"
CONCURRENT = 32  # requests in flight in the runtime part (the runtime benchmark's -c32)


def _databases(stack: contextlib.ExitStack, folder: str) -> list[tuple[str, Database]]:
    from tests.integration import POSTGRES, find_local_services, postgres_schema

    found = [("SQLite", Database(str(Path(folder) / "reports.db")))]
    find_local_services()
    if os.environ.get(POSTGRES):
        found.append(("PostgreSQL", Database(stack.enter_context(postgres_schema()))))
    else:
        print("(PostgreSQL did not answer: SQLite only)")
    return found


def prepare(db: Database) -> list[str]:
    db.upgrade()
    with db.session() as s:
        transfer.import_catalog(s, ADMIN, demo_files())
        approve_all(s)
        deployments.deploy(s, DEPLOYER, "staging")
        deployments.deploy(s, DEPLOYER, "production")
        access.create_operator(s, ADMIN, "bench", PASSWORD, ["viewer"])
    return [o.code for o in load_catalog(CATALOG_PATH).offers]


def generate(db: Database, rows: int, days: int, seed: int = 11) -> tuple[int, int]:
    """About two thirds propositions and a third events, written in chunks; returns
    (propositions, events)."""
    catalog = load_catalog(CATALOG_PATH)
    placements = {p.name: p.channel for p in catalog.placements}
    offers = [o for o in catalog.offers if o.placements]
    parents = {c.name: c.parent for c in catalog.categories}

    def chain(category: str) -> str:
        out = []
        while category:
            out.append(category)
            category = parents.get(category) or ""
        return join_categories(out)

    segments = [s.name for s in catalog.segments]
    rng = np.random.default_rng(seed)
    n_props = rows * 2 // 3
    end = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    start = end - dt.timedelta(days=days)
    span = (end - start).total_seconds()
    sqlite = db.engine.dialect.name == "sqlite"
    chunk = 250_000
    written_props = written_events = 0
    with db.engine.begin() as conn:
        for first in range(0, n_props, chunk):
            n = min(chunk, n_props - first)
            offer_i = rng.integers(0, len(offers), n)
            seconds = np.sort(rng.random(n) * span)
            seg_bits = rng.random((n, len(segments))) < 0.25
            props, events = [], []
            for i in range(n):
                offer = offers[offer_i[i]]
                placement = list(offer.placements)[i % len(offer.placements)]
                channel = placements[placement]
                at = start + dt.timedelta(seconds=float(seconds[i]))
                code = f"b{first + i:011d}"
                segs = " ".join(s for s, on in zip(segments, seg_bits[i], strict=True) if on)
                when = at.isoformat(sep=" ") if sqlite else at
                props.append(
                    (
                        code,
                        "production",
                        1,
                        "customer",
                        f"C{(first + i) % 10_000 + 1:07d}",
                        None,
                        placement,
                        channel,
                        offer.code,
                        chain(offer.category),
                        segs,
                        1,
                        50.0,
                        1.0,
                        0 if sqlite else False,
                        when,
                    )
                )
                roll = (first + i) * 2654435761 % 1000 / 1000
                kinds = []
                if channel != "email" and roll < 0.50:
                    kinds.append("presented")
                if roll < 0.03:
                    kinds.append("accepted")
                elif 0.03 <= roll < 0.07:
                    kinds.append("rejected")
                for kind in kinds:
                    event_at = at + dt.timedelta(seconds=30)
                    events.append(
                        (
                            "production",
                            f"e{first + i}-{kind}",
                            kind,
                            kind,
                            0 if sqlite else False,
                            code,
                            "customer",
                            props[-1][4],
                            None,
                            offer.code,
                            props[-1][9],
                            segs,
                            channel,
                            placement,
                            event_at.isoformat(sep=" ") if sqlite else event_at,
                            event_at.isoformat(sep=" ") if sqlite else event_at,
                            "{}",
                        )
                    )
            _write(conn, "propositions", PROPOSITION_COLUMNS, props, sqlite)
            _write(conn, "events", EVENT_COLUMNS, events, sqlite)
            written_props += len(props)
            written_events += len(events)
    return written_props, written_events


def _write(
    conn: Any, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]], sqlite: bool
) -> None:
    if not rows:
        return
    if sqlite:
        marks = ", ".join("?" * len(columns))
        conn.connection.driver_connection.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows
        )
        return
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _console(db: Database) -> TestClient:
    client = TestClient(people_app(db))
    page = client.get("/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token
    client.post("/console/login", data={"name": "bench", "password": PASSWORD, "csrf": token[1]})
    return client


def time_pages(db: Database) -> list[tuple[str, float, float]]:
    """(page, server ms for the page, ms of its queries alone), warm."""
    client = _console(db)
    out = []
    period = Period.last(30)
    for path in PAGES:
        url = f"/console/{path}?env=production&days=30"
        assert client.get(url).status_code == 200, path  # warm
        page_ms = _best(functools.partial(client.get, url), 3)
        by = cast(Dimension, path.split("/")[1] if "/" in path else "day")
        asked = Period.last(2) if by == "hour" else period
        with db.engine.connect() as conn:
            query_ms = _best(functools.partial(reports.report, conn, "production", by, asked), 3)
        out.append((path, page_ms, query_ms))
    return out


def _best(run: Any, times: int) -> float:
    best = float("inf")
    for _ in range(times):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best * 1000


# -- the runtime's cost of the rollup ----------------------------------------------------
async def _drive(node: RuntimeNode, decisions: int) -> tuple[float, float]:
    await node.start()
    try:
        service = node.runtime
        asks = [
            msgspec.convert(
                {
                    "profile_id": f"C{i % 10_000 + 1:07d}",
                    "placements": [{"placement": "web_account_sidebar"}],
                },
                DecisionIn,
            )
            for i in range(decisions)
        ]
        started = time.perf_counter()
        codes: list[str] = []
        for first in range(0, len(asks), CONCURRENT):  # as 32 connections would
            answers = await asyncio.gather(
                *(service.decide("staging", ask) for ask in asks[first : first + CONCURRENT])
            )
            for answer in answers:
                codes.extend(o["tracking_code"] for p in answer["placements"] for o in p["offers"])
        decided = time.perf_counter() - started
        events = [
            msgspec.convert({"name": "presented", "tracking_code": c}, EventIn) for c in codes
        ]
        started = time.perf_counter()
        batches = [events[i : i + 10] for i in range(0, len(events), 10)]
        for first in range(0, len(batches), CONCURRENT):
            await asyncio.gather(
                *(service.post_events("staging", b) for b in batches[first : first + CONCURRENT])
            )
        posted = time.perf_counter() - started
        return decisions / decided, len(events) / posted
    finally:
        await node.stop()


def rollup_cost(folder: str, decisions: int) -> list[tuple[str, float, float]]:
    out: list[tuple[str, float, float]] = []
    for label, keep in (
        ("without the rollup", False),
        ("with the rollup", True),
        ("without the rollup", False),
        ("with the rollup", True),
    ):
        path = Path(folder) / f"runtime-{keep}-{len(out)}.db"
        db = Database(str(path))
        db.upgrade()
        with db.session() as s:
            transfer.import_catalog(s, ADMIN, demo_files())
            approve_all(s)
            deployments.deploy(s, DEPLOYER, "staging")
        load_rows(
            db, load_catalog(CATALOG_PATH).audiences[0], profiles.generate(10_000).to_pylist()
        )
        node = RuntimeNode(
            RuntimeSettings(database=db.url, environments=["staging"], report_rollups=keep), db=db
        )
        per_s, events_s = asyncio.run(_drive(node, decisions))
        out.append((label, per_s, events_s))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--decisions", type=int, default=3000)
    parser.add_argument("--skip-runtime", action="store_true")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as stack:
        for label, db in _databases(stack, folder):
            prepare(db)
            started = time.perf_counter()
            n_props, n_events = generate(db, options.rows, options.days)
            generated = time.perf_counter() - started
            started = time.perf_counter()
            with db.engine.begin() as conn:
                kept = rollups.rebuild(conn)
            rebuilt = time.perf_counter() - started
            print(
                f"\n{label}: {n_props:,} propositions + {n_events:,} events over "
                f"{options.days} days "
                f"(written in {generated:.0f} s); rollup rebuilt in {rebuilt:.1f} s ({kept:,} rows)"
            )
            print(f"  {'page (last 30 days, all offers)':<34} {'page ms':>9} {'queries ms':>11}")
            for path, page_ms, query_ms in time_pages(db):
                mark = "" if page_ms < 1000 else "  (over 1 s)"
                print(f"  {path:<34} {page_ms:>9.0f} {query_ms:>11.0f}{mark}")
        if not options.skip_runtime:
            print(
                "\nThe runtime with and without the rollup (in process, SQLite, "
                f"{options.decisions:,} decisions, then their presentations, 10 per request, "
                f"{CONCURRENT} in flight):"
            )
            results = rollup_cost(folder, options.decisions)
            for label, per_s, events_s in results:
                print(f"  {label:<20} {per_s:>8,.0f} decisions/s {events_s:>9,.0f} events/s")
            with_ = [r for r in results if r[0] == "with the rollup"]
            without = [r for r in results if r[0] != "with the rollup"]
            d = statistics.mean(r[1] for r in with_) / statistics.mean(r[1] for r in without)
            e = statistics.mean(r[2] for r in with_) / statistics.mean(r[2] for r in without)
            print(f"  the rollup keeps {d:.0%} of the decisions/s and {e:.0%} of the events/s")


if __name__ == "__main__":
    main()
