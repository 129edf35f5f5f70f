"""Design API latency over real HTTP (uvicorn on 127.0.0.1), on SQLite and, when
OVERTURE_TEST_POSTGRES_URL is set, PostgreSQL: the operator's steps on the demo catalog.

    python -m benchmarks.design [--rounds 50]

The baseline, measured in the same run, is `GET /v1/design/auth/me` (authentication and one
operator read): each step is printed in milliseconds and as a multiple of it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from overture.demo import CATALOG_PATH
from overture.design import access
from overture.design.catalog import Actor
from overture.store import Database
from tests.design.server import live_server  # the servers the tests use
from tests.integration import postgres_schema

PASSWORD = "a long passphrase"


@contextlib.contextmanager
def _databases() -> Iterator[list[tuple[str, Database]]]:
    with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as stack:
        found = [("SQLite", Database(str(Path(folder) / "overture.db")))]
        if os.environ.get("OVERTURE_TEST_POSTGRES_URL"):
            found.append(("PostgreSQL", Database(stack.enter_context(postgres_schema()))))
        try:
            yield found
        finally:
            for _, db in found:
                db.dispose()


def _ms(action: Callable[[], Any], rounds: int = 1) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def measure(db: Database, rounds: int) -> dict[str, float]:
    db.upgrade()
    with db.session() as s:
        access.create_operator(s, Actor("bench"), "ann", PASSWORD, ["administrator"])
    files = {p.name: p.read_text() for p in sorted(CATALOG_PATH.glob("*.yaml"))}
    with live_server(db) as url, httpx.Client(base_url=url, timeout=120) as api:
        login = api.post("/v1/design/auth/login", json={"name": "ann", "password": PASSWORD})
        api.headers["Authorization"] = f"Bearer {login.json()['token']}"
        result = {"GET /auth/me (baseline)": _ms(lambda: api.get("/v1/design/auth/me"), rounds)}
        result["import the demo catalog"] = _ms(
            lambda: api.post("/v1/design/catalog/import", json={"files": files})
        )
        items = api.get("/v1/design/offers", params={"limit": 500}).json()["items"]
        steps = []
        for item in items:
            code = item["key"]
            start = time.perf_counter()
            etag = api.post(
                f"/v1/design/offers/{code}/submit", headers={"If-Match": f'"{item["version"]}"'}
            ).headers["etag"]
            api.post(f"/v1/design/offers/{code}/approve", headers={"If-Match": etag})
            steps.append((time.perf_counter() - start) / 2)
        result["submit or approve an offer"] = statistics.median(steps) * 1000
        result["GET an offer"] = _ms(lambda: api.get("/v1/design/offers/CC-GOLD"), rounds)
        result["GET 36 offers"] = _ms(lambda: api.get("/v1/design/offers"), rounds)
        result["plan staging"] = _ms(lambda: api.get("/v1/design/environments/staging/plan"))
        result["deploy staging"] = _ms(
            lambda: api.post("/v1/design/environments/staging/deployments", json={})
        )
    return result


def main(rounds: int = 50) -> dict[str, dict[str, float]]:
    results = {}
    with _databases() as databases:
        for label, db in databases:
            figures = measure(db, rounds)
            base = figures["GET /auth/me (baseline)"]
            print(f"\n{label} (median ms; × the baseline)")
            for step, ms in figures.items():
                print(f"  {step:<28} {ms:8.1f} ms  {ms / base:6.1f}×")
            results[label] = figures
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=50)
    main(parser.parse_args().rounds)
