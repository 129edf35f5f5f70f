"""Bringing a cached profile history up to date on SQLite: what was written since, against
the version and then the whole history again.

    python -m benchmarks.history_reads [--customers 10000] [--rounds 6] [--profiles 2000]

A node that has lost a claim to another worker on the same SQLite file checks each cached
history before deciding (runtime/service.py `_history`); with two workers on random
profiles, the other one has often decided for the profile since. This fills a
database as the runtime benchmark does (the demo catalog, `--customers` profiles, the
in-process benchmark's decisions for `--rounds` rounds), then, for `--profiles` of its
profiles, times per profile (the best of five passes):

- the statements alone: the version, the whole counted history, and the rows past the
  ids a cached history has read (none new; the last two propositions new);
- the ledger's calls as a node makes them, when another worker wrote two rows and when
  nothing moved: before (the version, then the whole history and its index when it
  moved) and now (`SqlLedger.refresh`: the version, then what was written since and the
  index when it moved).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks import inprocess
from benchmarks.runtime import prepare
from overture.catalog import load_catalog
from overture.demo import CATALOG_PATH
from overture.history import tables as t
from overture.history.counted import profile_query
from overture.history.deployed import live_plan
from overture.history.ledger import ProfileHistory
from overture.history.recorder import Recorder
from overture.history.sql_ledger import SqlLedger
from overture.store import Database


def _best(passes: int, run: Callable[[], float]) -> float:
    return min(run() for _ in range(passes))


def measure(customers: int, rounds: int, profiles: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "history.db"
        db = Database(str(path))
        key = prepare(db, customers)
        arguments = ["--rounds", str(rounds), "--customers", str(customers)]
        options = inprocess.parser().parse_args([*arguments, "--database", db.url, "--key", key])
        asyncio.run(inprocess.measure(options))  # (prints its rounds)
        return asyncio.run(_time_reads(db, path, profiles))


async def _time_reads(db: Database, path: Path, profiles: int) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    try:
        rows, _ = conn.execute("SELECT count(*), max(id) FROM propositions").fetchone()
        env, audience = conn.execute("SELECT environment, audience FROM propositions").fetchone()
        ids = [r[0] for r in conn.execute("SELECT DISTINCT profile_id FROM propositions")]
        random.Random(1).shuffle(ids)
        ids = ids[:profiles]
        live = live_plan(env, load_catalog(CATALOG_PATH))
        whole = profile_query(live.lookback, "sqlite")
        since = profile_query(live.lookback, "sqlite", after=True)
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)

        def at(value: dt.datetime) -> str:
            return value.isoformat(" ", "microseconds")

        ledger = SqlLedger(db, Recorder(db), ThreadPoolExecutor(1))
        cached = {pid: await ledger.load(live, audience, pid) for pid in ids}
        entries = sum(len(h.items) for h in cached.values()) / len(ids)

        def statement(make: Callable[[str], tuple[str, tuple[Any, ...]]]) -> float:
            start = time.perf_counter()
            for pid in ids:
                conn.execute(*make(pid)).fetchall()
            return (time.perf_counter() - start) / len(ids) * 1e6

        def two_new(h: ProfileHistory) -> tuple[int, int]:
            return (h.after[0] - 2, h.after[1])  # past all but the last two propositions

        figures: dict[str, float] = {
            "statement: version": _best(
                5, lambda: statement(lambda pid: (t.READ_VERSION, (env, audience, pid)))
            ),
            "statement: whole history": _best(
                5,
                lambda: statement(
                    lambda pid: (whole.sql, whole.params(env, audience, pid, now, at))
                ),
            ),
            "statement: rows since, none new": _best(
                5,
                lambda: statement(
                    lambda pid: (
                        since.sql,
                        since.params(env, audience, pid, now, at, after=cached[pid].after),
                    )
                ),
            ),
            "statement: rows since, 2 new": _best(
                5,
                lambda: statement(
                    lambda pid: (
                        since.sql,
                        since.params(env, audience, pid, now, at, after=two_new(cached[pid])),
                    )
                ),
            ),
        }

        async def calls(call: Callable[[str], Awaitable[None]]) -> float:
            best = float("inf")
            for _ in range(5):
                start = time.perf_counter()
                for pid in ids:
                    await call(pid)
                best = min(best, (time.perf_counter() - start) / len(ids) * 1e6)
            return best

        async def before_moved(pid: str) -> None:
            await ledger.version(env, audience, pid)  # (moved: read it all again)
            (await ledger.load(live, audience, pid)).count("presented", "offer", "-", None)

        async def now_moved(pid: str) -> None:
            h = cached[pid]
            stale = ProfileHistory(h.version - 1, h.items, two_new(h))
            fresh = await ledger.refresh(live, audience, pid, stale)
            fresh.count("presented", "offer", "-", None)

        async def before_same(pid: str) -> None:
            await ledger.version(env, audience, pid)

        async def now_same(pid: str) -> None:
            await ledger.refresh(live, audience, pid, cached[pid])

        figures["moved, before: version + whole history + index"] = await calls(before_moved)
        figures["moved, now: version + rows since + index"] = await calls(now_moved)
        figures["not moved, before: version"] = await calls(before_same)
        figures["not moved, now: version"] = await calls(now_same)
        await ledger.close()
        return {"propositions": rows, "profiles": len(ids), "entries": entries, **figures}
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--profiles", type=int, default=2000)
    options = parser.parse_args()
    r = measure(options.customers, options.rounds, options.profiles)
    print(
        f"\n{r['propositions']:,} propositions; {r['profiles']:,} profiles with "
        f"{r['entries']:.1f} counted entries each on average; µs per profile (best of 5):"
    )
    for name, value in r.items():
        if isinstance(value, float) and name != "entries":
            print(f"  {name:<50} {value:7.1f}")
    ratio = (
        r["moved, now: version + rows since + index"]
        / r["moved, before: version + whole history + index"]
    )
    print(f"a history another worker changed is brought up to date in {ratio:.0%} of the time")


if __name__ == "__main__":
    main()
