"""The runtime's CPU per decision, in process: the node's ASGI app driven by concurrent
clients without HTTP, so that a change to the runtime can be measured on a machine whose
speed drifts.

    python -m benchmarks.inprocess [--rounds 8] [--decisions 2500] [--clients 32]
                                   [--events] [--profile] [--redis] [--pair]

The wrk benchmark (benchmarks/runtime.py) gives requests per second, which on this 2-core
machine drift by ±25 % within minutes, and which also pay for uvicorn and the kernel. This
one gives the CPU time the process spends per decision (`time.process_time` over a round),
the minimum over rounds (the least disturbed), on the same demo catalog, 10,000 customers
and two-placement requests as the wrk benchmark, with every proposition recorded (SQLite,
or PostgreSQL + Redis with `--redis` when the test URLs are set). `--profile` prints where
one round's time goes (cProfile, by own time). To compare two versions, run each in
alternation (A B A B) and compare the minima.

`--pair` tells what a second worker process costs each one, SQLite, and why: the same
measurement (each process's median round, the rounds of both run at the same time) made
by one process alone, then by two at once each on a file of its own (what
the machine gives two processes: cores, caches), then by two at once on one shared file
(what `overture serve --workers 2` does: each process also sees the other's writes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import os
import pstats
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from overture.runtime.node import RuntimeNode, RuntimeSettings
from overture.server import create_server
from overture.store import Database

CUSTOMERS = 10_000


def _decision_body(rng: random.Random, customers: int) -> bytes:
    return (
        b'{"profile_id":"C%07d","placements":[{"placement":"web_home_hero"},'
        b'{"placement":"web_account_sidebar"}]}' % rng.randrange(customers)
    )


class _Counter:
    def __init__(self) -> None:
        self.n = 0


def _event_body(counter: _Counter, customers: int) -> bytes:
    counter.n += 1
    template = b'{"name":"view","offer":"SVC-PAPERLESS","profile_id":"C%07d","event_id":"in-%d-%d"}'
    return template % (counter.n % customers, os.getpid(), counter.n)


class Target(NamedTuple):
    """What the clients call: the app, the route, the API key, and the bodies to send."""

    app: Any
    path: str
    key: str
    bodies: Iterator[bytes]


async def _client(
    target: Target, count: int, statuses: dict[int, int], latencies: list[float]
) -> None:
    app, path = target.app, target.path
    headers = [
        (b"content-type", b"application/json"),
        (b"x-api-key", target.key.encode()),
        (b"host", b"bench"),
    ]
    for _ in range(count):
        body = next(target.bodies)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        sent = False

        async def receive(body: bytes = body) -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)  # as a server: nothing more until a disconnect
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        status = 0

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        started = time.perf_counter()
        await app(scope, receive, send)
        latencies.append(time.perf_counter() - started)
        statuses[status] = statuses.get(status, 0) + 1


class Round(NamedTuple):
    cpu: float  # seconds of the process's CPU
    wall: float
    statuses: dict[int, int]
    latencies: list[float]  # seconds, sorted

    def percentile(self, p: float) -> float:
        return self.latencies[min(len(self.latencies) - 1, int(len(self.latencies) * p))]


async def _round(target: Target, total: int, clients: int) -> Round:
    """`total` requests over `clients` concurrent clients."""
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    per = total // clients
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(_client(target, per, statuses, latencies) for _ in range(clients)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return Round(cpu, wall, statuses, sorted(latencies))


@contextlib.contextmanager
def _database(redis: bool) -> Iterator[tuple[str, str | None, str]]:
    """(database URL, Redis URL or None, Redis key prefix) for a run."""
    if redis:
        from benchmarks.runtime import redis_prefix
        from tests.integration import postgres_schema

        redis_url = os.environ.get("OVERTURE_TEST_REDIS_URL")
        if not (os.environ.get("OVERTURE_TEST_POSTGRES_URL") and redis_url):
            sys.exit("--redis needs OVERTURE_TEST_POSTGRES_URL and OVERTURE_TEST_REDIS_URL")
        # keys of its own: counters another run left in this Redis would be counted
        # against this run's fresh database (and block every offer)
        with postgres_schema() as url, redis_prefix(redis_url) as prefix:
            yield url, redis_url, prefix
        return
    with tempfile.TemporaryDirectory() as folder:
        yield Database(str(Path(folder) / "bench.db")).url, None, "overture"


async def measure(options: argparse.Namespace) -> dict[str, Any]:
    """Run the rounds `options` asks for (see main); print each; return the figures."""
    from benchmarks.runtime import prepare

    with contextlib.ExitStack() as stack:
        if options.database:  # prepared by the caller (--pair)
            url, redis_url, prefix, key = options.database, None, "overture", options.key
        else:
            url, redis_url, prefix = stack.enter_context(_database(options.redis))
            key = prepare(Database(url), options.customers)
        settings = RuntimeSettings(
            database=url,
            environments=["staging"],
            redis=redis_url,
            redis_prefix=prefix,
            freeze_startup_objects=True,
        )
        node = RuntimeNode(settings)
        app = create_server(node, design=False)
        await node.start()
        try:
            rng = random.Random(options.seed)
            counter = _Counter()
            customers = options.customers
            if options.events:
                path, what = "/v1/events", "event"
                bodies: Iterator[bytes] = iter(lambda: _event_body(counter, customers), None)
            else:
                path, what = "/v1/decisions", "decision"
                bodies = iter(lambda: _decision_body(rng, customers), None)
            clients = options.clients
            n = options.decisions // clients * clients  # each client sends as many
            target = Target(app, path, key, bodies)
            await _round(target, n, clients)  # warm the caches
            if options.start_at:  # --pair: the processes' rounds at the same time
                await asyncio.sleep(max(0.0, options.start_at - time.time()))
            cpu_per: list[float] = []
            worst: list[float] = []
            rates: list[float] = []
            p99s: list[float] = []
            statuses: dict[int, int] = {}
            for i in range(options.rounds):
                r = await _round(target, n, clients)
                for status, count in r.statuses.items():
                    statuses[status] = statuses.get(status, 0) + count
                cpu_per.append(r.cpu / n * 1e6)
                worst.append(r.latencies[-1] * 1000)
                rates.append(n / r.wall)
                p99s.append(r.percentile(0.99) * 1000)
                print(
                    f"  round {i + 1}: {r.cpu / n * 1e6:6.0f} µs CPU per {what}, "
                    f"{n / r.wall:8,.0f}/s wall, p50 {r.percentile(0.5) * 1000:5.2f} ms, "
                    f"p99 {r.percentile(0.99) * 1000:6.2f} ms, "
                    f"max {r.latencies[-1] * 1000:6.1f} ms",
                    flush=True,
                )
            print(
                f"CPU per {what}, {clients} concurrent clients, {n:,} per round: "
                f"min {min(cpu_per):.0f} µs, median {statistics.median(cpu_per):.0f} µs; "
                f"median round {statistics.median(rates):,.0f}/s, p99 "
                f"{statistics.median(p99s):.1f} ms; slowest answer {max(worst):.1f} ms"
                f" ({'PostgreSQL + Redis' if options.redis else 'SQLite'})"
                + (f"; answers: {statuses}" if set(statuses) - {200, 202} else "")
            )
            if options.profile:
                profiler = cProfile.Profile()
                profiler.enable()
                await _round(target, n, clients)
                profiler.disable()
                stats = pstats.Stats(profiler)
                stats.sort_stats("tottime").print_stats(options.top)
            return {
                "cpu_us": cpu_per,
                "per_second": rates,
                "p99_ms": p99s,
                "slowest_ms": max(worst),
                "statuses": statuses,
            }
        finally:
            await node.stop()


def parser() -> argparse.ArgumentParser:
    found = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    found.add_argument("--rounds", type=int, default=8)
    found.add_argument("--decisions", type=int, default=2500, help="requests per round")
    found.add_argument("--clients", type=int, default=32)
    found.add_argument("--customers", type=int, default=CUSTOMERS)
    found.add_argument("--events", action="store_true", help="events instead of decisions")
    found.add_argument("--redis", action="store_true", help="PostgreSQL + Redis")
    found.add_argument("--profile", action="store_true", help="cProfile one more round")
    found.add_argument("--top", type=int, default=35)
    found.add_argument(
        "--pair", action="store_true", help="one process, two on own files, two on one file"
    )
    found.add_argument("--database", help=argparse.SUPPRESS)  # --pair's processes
    found.add_argument("--key", default="", help=argparse.SUPPRESS)
    found.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    found.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    found.add_argument("--seed", type=int, default=7, help="of the profiles asked for")
    return found


def pair(options: argparse.Namespace) -> dict[str, float]:
    """CPU µs per decision of each process: alone, two on own files, two sharing one
    file (each figure the mean over the processes of their median round)."""
    from benchmarks.runtime import prepare

    def run(urls_and_keys: list[tuple[str, str]], share: int = 1) -> float:
        # Both start their rounds at once, and each reports its median round: a process
        # that finished first would leave the other's last rounds alone (and its minimum
        # would be the figure of one process alone).
        start_at = time.time() + 8 + options.customers / 1000  # started and warm by then
        command = [sys.executable, "-m", "benchmarks.inprocess", "--quiet"]
        command += ["--start-at", str(start_at)]
        decisions = max(options.clients, options.decisions // share)
        command += ["--rounds", str(options.rounds), "--decisions", str(decisions)]
        command += ["--clients", str(options.clients), "--customers", str(options.customers)]
        processes = [  # each its own profiles to ask for, as workers get different requests
            subprocess.Popen(
                [*command, "--database", url, "--key", key, "--seed", str(7 + i)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for i, (url, key) in enumerate(urls_and_keys)
        ]
        medians = []
        for process in processes:
            out, _ = process.communicate()
            if process.returncode != 0:
                raise RuntimeError(f"a measuring process failed ({process.returncode})")
            medians.append(float(out.split()[-1]))
        return statistics.fmean(medians)

    with tempfile.TemporaryDirectory() as folder:
        template = Path(folder) / "template.db"
        key = prepare(Database(str(template)), options.customers)

        def fresh(name: str) -> tuple[str, str]:
            """A copy of the prepared database: each run starts from the same history."""
            path = Path(folder) / f"{name}.db"
            with (
                contextlib.closing(sqlite3.connect(template)) as source,
                contextlib.closing(sqlite3.connect(path)) as copy,
            ):
                source.backup(copy)
            return Database(str(path)).url, key

        out = {
            "alone": run([fresh("alone")]),
            "own_files": run([fresh("own-a"), fresh("own-b")]),
            # each makes half the decisions, so that the file holds as much history as the
            # others: profiles decided twice as often are capped more, and their decisions
            # then walk more candidates (more work, but not the sharing's)
            "one_file": run([fresh("shared")] * 2, share=2),
        }
    alone = out["alone"]
    print(f"CPU µs per decision of each process (SQLite, median of {options.rounds} rounds):")
    print(f"  one process alone                   {alone:6.0f}")
    for key, label in (
        ("own_files", "two at once, a file each"),
        ("one_file", "two at once, one file"),
    ):
        print(f"  {label:<35} {out[key]:6.0f}  ({out[key] / alone - 1:+.0%})")
    print(
        f"a second worker's cost: the machine's {out['own_files'] / alone - 1:+.0%}, "
        f"sharing the file {out['one_file'] / out['own_files'] - 1:+.0%}"
    )
    return out


def main() -> None:
    options = parser().parse_args()
    if options.pair:
        pair(options)
        return
    if options.quiet:  # a --pair process: only its median round, last
        with contextlib.redirect_stdout(io.StringIO()):
            result = asyncio.run(measure(options))
        if set(result["statuses"]) - {200, 202}:
            sys.exit(f"not every request was answered: {result['statuses']}")
        print(statistics.median(result["cpu_us"]))
        return
    asyncio.run(measure(options))


if __name__ == "__main__":
    main()
