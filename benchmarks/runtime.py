"""Runtime HTTP load: decisions and events per second, p50/p99, with wrk on loopback.

    python -m benchmarks.runtime [--seconds 8] [--connections 32]

Needs wrk (Debian: apt-get install wrk). For each configuration, `overture serve` serves
the runtime in a separate process (1 and 2 workers), with the history recorded in SQLite and,
when OVERTURE_TEST_POSTGRES_URL and OVERTURE_TEST_REDIS_URL are set, in PostgreSQL with
counters and sessions in Redis. Every decision is for a random one of 10,000 demo
customers on the demo catalog (web_home_hero + web_account_sidebar: up to 4 offers,
capping on), so policies read real histories and every proposition is stored.

The ceiling, measured in the same run with the same workers and wrk settings, is a
Starlette route that only decodes the JSON body and answers (benchmarks/ceiling.py).

Beside each rate: the server's CPU per request (all its processes, from /proc, over the
measured seconds) and how many cores it kept busy. This machine's speed drifts by ±25 %
within minutes, so a change shows better as CPU per request than as requests per second;
and a server short of one busy core per worker is waiting, not computing. The final table
also gives, per request, the CPU of this machine's PostgreSQL and Redis processes and of
wrk: on one machine they share its cores with the server, which bounds the rate whatever
the server does.

One more run (SQLite, one worker) deploys staging again twice while it serves: the node
builds each new plan off the event loop and swaps it in; its p99 is printed beside the
run without deployments.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from overture.catalog import load_catalog
from overture.demo import CATALOG_PATH, profiles
from overture.design import access, deployments, transfer
from overture.store import Database
from overture.store.profiles import load_rows
from tests.design.helpers import ADMIN, DEPLOYER, approve_all, demo_files
from tests.integration import postgres_schema

CUSTOMERS = 10_000
DECISION_SCRIPT = """
math.randomseed(%(seed)d)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "%(key)s"
local template = '{"profile_id":"C%%07d","placements":[{"placement":"web_home_hero"},'
  .. '{"placement":"web_account_sidebar"}]}'
request = function()
  local body = string.format(template, math.random(0, %(customers)d - 1))
  return wrk.format(nil, "/v1/decisions", nil, body)
end
"""
EVENT_SCRIPT = """
local n = 0
local thread_id = "%(seed)d"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "%(key)s"
local template = '{"name":"view","offer":"SVC-PAPERLESS","profile_id":"C%%07d",'
  .. '"event_id":"%%s-%%d"}'
request = function()
  n = n + 1
  local body = string.format(template, n %% %(customers)d, thread_id, n)
  return wrk.format(nil, "/v1/events", nil, body)
end
"""


@dataclass
class Result:
    label: str
    workers: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float  # the server's CPU (all its processes) per request over the measured run
    busy: float  # the server's CPU over the measured run, in cores (1.0: one core all along)
    services_us: float = 0.0  # PostgreSQL's and Redis's processes' CPU per request
    wrk_us: float = 0.0  # wrk's CPU per request


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of `pid` and its descendants so far, from /proc (Linux);
    0.0 where /proc is not there. uvicorn's workers are children of the process started."""
    total = 0.0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            total += _stat_cpu(Path(f"/proc/{current}/stat").read_text())
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, IndexError, ValueError):
            continue
    return total


def _services_cpu() -> float:
    """CPU time so far of this machine's PostgreSQL and Redis processes (from /proc): on
    one machine they take their share of the cores from the node. Approximate: it counts
    other sessions' backends too, and loses those of backends that exit during a run."""
    total = 0.0
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.find("(") + 1 : stat.rfind(")")]
        if name.startswith(("postgres", "redis-server")):
            total += _stat_cpu(stat)
    return total


def _stat_cpu(stat: str) -> float:
    """The CPU seconds (user + system) a /proc/PID/stat text tells."""
    fields = stat.rsplit(")", 1)[1].split()  # (after the name, which may hold spaces)
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def _children_cpu() -> float:
    """CPU time of this process's finished children (wrk)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(db: Database, customers: int = CUSTOMERS) -> str:
    """The demo catalog deployed to staging and `customers` demo profiles: a runtime key."""
    db.upgrade()
    with db.session() as s:
        transfer.import_catalog(s, ADMIN, demo_files())
        approve_all(s)
        deployments.deploy(s, DEPLOYER, "staging")
        key = access.create_api_key(s, ADMIN, "staging", "bench").key
    audience = load_catalog(CATALOG_PATH).audiences[0]
    load_rows(db, audience, profiles.generate(customers).to_pylist())
    return key


@contextlib.contextmanager
def redis_prefix(url: str) -> Iterator[str]:
    """A key prefix of its own for a run, and its keys deleted afterwards."""
    import redis

    prefix = f"bench-{secrets.token_hex(4)}"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(url)
        try:
            keys = list(client.scan_iter(f"{prefix}:*", count=1000))
            for start in range(0, len(keys), 1000):
                client.unlink(*keys[start : start + 1000])
        finally:
            client.close()


def redeploy(db: Database, seconds: float, times: int = 2) -> threading.Thread:
    """Deploy staging again `times` times, evenly over the next `seconds` (a thread)."""

    def run() -> None:
        for _ in range(times):
            time.sleep(seconds / (times + 1))
            with db.session() as s:
                deployments.deploy(s, DEPLOYER, "staging", "benchmark: a swap", force=True)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@contextlib.contextmanager
def server(
    args: list[str], workers: int, env: dict[str, str] | None = None
) -> Iterator[tuple[str, int]]:
    port = _free_port()
    process = subprocess.Popen(
        [*args, "--port", str(port)],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code in (200, 404):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"the server did not start: {' '.join(args)}")
            time.sleep(0.1)
        _wait_for_listeners(port, workers, deadline)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=60)


def _wait_for_listeners(port: int, workers: int, deadline: float) -> None:
    """Until every worker listens on the port (each has a socket of its own: a worker
    still starting would get none of the measured run's connections). Linux's /proc;
    elsewhere, a second's pause."""
    table = Path("/proc/net/tcp")
    if not table.exists():
        time.sleep(1.0)
        return
    while True:
        listening = sum(
            1
            for line in table.read_text().splitlines()[1:]
            if line.split()[3] == "0A" and int(line.split()[1].split(":")[1], 16) == port
        )
        if listening >= workers:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{listening} of {workers} workers listen on port {port}")
        time.sleep(0.1)


@dataclass
class Load:
    """What one wrk run measured."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu: float  # the server's CPU seconds over the measured run
    services_cpu: float  # PostgreSQL's and Redis's over the same run
    wrk_cpu: float  # wrk's


def wrk(url: str, script: str, seconds: int, connections: int, pid: int | None = None) -> Load:
    """A measured run (after a 2 s warm-up) of wrk against `url`."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        # warm up (JIT-free Python still fills caches: plans, profiles, histories)
        subprocess.run(
            ["wrk", "-t1", f"-c{connections}", "-d2s", "-s", f.name, url],
            capture_output=True,
            check=True,
        )
        cpu = _cpu_seconds(pid) if pid is not None else 0.0
        services, children = _services_cpu(), _children_cpu()
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", f.name, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        cpu = (_cpu_seconds(pid) - cpu) if pid is not None else 0.0
        services, children = _services_cpu() - services, _children_cpu() - children
    finally:
        os.unlink(f.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    count = int(errors.group(1)) if errors else 0
    if socket_errors:
        count += sum(int(x) for x in socket_errors.groups())
    return Load(rps, p50, p99, count, cpu, services, children)


def _ms(text: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk (Debian)")
    overture = str(Path(sys.executable).parent / "overture")
    results: list[Result] = []

    def run(
        label: str,
        workers: int,
        args: list[str],
        script: str,
        *,
        env: dict[str, str] | None = None,
        during: Database | None = None,
    ) -> None:
        with server([*args, "--workers", str(workers)], workers, env) as (url, pid):
            if during is not None:  # after wrk's 2 s warm-up, over the measured seconds
                swaps = redeploy(during, options.seconds + 2 * 2)
            load = wrk(url, script, options.seconds, options.connections, pid)
            if during is not None:
                swaps.join()
        requests = load.rps * options.seconds

        def per_request(seconds: float) -> float:
            return seconds / requests * 1e6 if requests else 0.0

        result = Result(
            label,
            workers,
            load.rps,
            load.p50_ms,
            load.p99_ms,
            load.errors,
            cpu_us=per_request(load.cpu),
            busy=load.cpu / options.seconds,
            services_us=per_request(load.services_cpu),
            wrk_us=per_request(load.wrk_cpu),
        )
        results.append(result)
        print(
            f"  {label:<34} {workers} worker(s) {load.rps:>9,.0f}/s"
            f"  p50 {load.p50_ms:6.2f} ms  p99 {load.p99_ms:6.2f} ms"
            f"  CPU {result.cpu_us:5.0f} µs/req ({result.busy:.2f} cores)"
            + (f"  {load.errors} errors" if load.errors else ""),
            flush=True,
        )

    print(
        f"wrk -t1 -c{options.connections} -d{options.seconds}s on loopback; "
        "10,000 customers, demo catalog"
    )
    with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as stack:
        setups: list[tuple[str, str, list[str]]] = []
        sqlite = Database(str(Path(folder) / "bench.db"))
        setups.append(("SQLite history", sqlite.url, []))
        if os.environ.get("OVERTURE_TEST_POSTGRES_URL") and os.environ.get(
            "OVERTURE_TEST_REDIS_URL"
        ):
            pg = Database(stack.enter_context(postgres_schema()))
            # a prefix of its own: counters another run left in this Redis would be
            # counted against this run's fresh database (and block every offer)
            redis_url = os.environ["OVERTURE_TEST_REDIS_URL"]
            prefix = stack.enter_context(redis_prefix(redis_url))
            redis = ["--redis", redis_url, "--redis-prefix", prefix]
            setups.append(("PostgreSQL + Redis", pg.url, redis))
        keys = {}
        for label, url, _extra in setups:
            keys[label] = prepare(Database(url))
        for workers in options.workers:
            run(
                "ceiling (Starlette + msgspec)",
                workers,
                [sys.executable, "-m", "benchmarks.ceiling"],
                DECISION_SCRIPT % {"seed": 1, "key": "", "customers": CUSTOMERS},
            )
            for label, url, extra in setups:
                key = keys[label]
                args = [
                    overture,
                    "serve",
                    "--role",
                    "runtime",
                    "--env",
                    "staging",
                    "--database",
                    url,
                    *extra,
                ]
                run(
                    f"decisions, {label}",
                    workers,
                    args,
                    DECISION_SCRIPT % {"seed": 2, "key": key, "customers": CUSTOMERS},
                )
                if workers == 1 and label.startswith("SQLite"):
                    run(
                        f"decisions, {label}, 2 deploys",
                        workers,
                        args,
                        DECISION_SCRIPT % {"seed": 3, "key": key, "customers": CUSTOMERS},
                        during=Database(url),
                    )
                run(
                    f"events, {label}",
                    workers,
                    args,
                    EVENT_SCRIPT
                    % {
                        "seed": secrets.randbelow(10**6) + workers * 10**7,
                        "key": key,
                        "customers": CUSTOMERS,
                    },
                )
    print()
    ceiling = {r.workers: r.rps for r in results if r.label.startswith("ceiling")}
    print(
        f"{'':<34} {'workers':>7} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'of ceiling':>10}"
        f" {'CPU µs/req':>10} {'cores':>5} {'PG+Redis µs':>11} {'wrk µs':>6}"
    )
    for r in results:
        print(
            f"{r.label:<34} {r.workers:>7} {r.rps:>9,.0f} {r.p50_ms:>7.2f} {r.p99_ms:>7.2f} "
            f"{r.rps / ceiling[r.workers]:>10.0%} {r.cpu_us:>10.0f} {r.busy:>5.2f}"
            f" {r.services_us:>11.0f} {r.wrk_us:>6.0f}"
        )
    print(
        "CPU µs/req: the server's CPU per request; PG+Redis µs: this machine's PostgreSQL "
        "and Redis processes' (on one machine they share its cores with the server); "
        "wrk µs: the load generator's"
    )
    print(
        "aims: decisions >= 5,000/s with p99 < 10 ms on SQLite (>= 50% of the ceiling), "
        ">= 3,000/s on PostgreSQL + Redis, a second worker adds throughput; "
        "events >= 10,000/s; a deployment mid-run leaves p99 as it was"
    )


if __name__ == "__main__":
    main()
