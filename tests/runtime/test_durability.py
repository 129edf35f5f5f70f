"""What a runtime acknowledged survives the process being killed; a stopped runtime
writes everything it accepted. (A separate process, killed for real.) With Redis, what the
killed node had counted converges to the history: a node still running settles it."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from overture.store.history import EventRow, PropositionRow
from tests.cli.test_server_cli import Served
from tests.deployed import Deployed
from tests.private_servers import private_redis
from tests.runtime.test_failures import redis_matches_history, wait_for
from tests.runtime.test_nodes import nodes


def _runtime(shop: Deployed, tmp_path: Path, *options: str) -> Served:
    served = Served(["--role", "runtime", "--database", shop.db.url, *options], tmp_path)
    served.wait_ready()
    deadline = time.monotonic() + 30
    while httpx.get(f"{served.url}/readyz").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return served


@pytest.mark.slow
@pytest.mark.parametrize(
    "counters", ["database", pytest.param("redis", marks=pytest.mark.integration)]
)
def test_a_kill_after_an_acknowledgement_loses_nothing(
    shop: Deployed, tmp_path: Path, counters: str
) -> None:
    with contextlib.ExitStack() as stack:
        options = []
        if counters == "redis":
            redis_url = stack.enter_context(private_redis()).url
            options = ["--redis", redis_url]
        _kill_under_load(shop, tmp_path, options)
        if counters == "redis":
            # what the killed node counted but never wrote is taken back by a node that
            # serves on (here a new one), once old enough to be settled
            settings = {"redis": redis_url, "settle_after_seconds": 1.0, "probe_seconds": 0.2}
            with nodes(shop.db, 1, **settings):
                wait_for(lambda: redis_matches_history(redis_url, shop.db), 30, "converge")


def _kill_under_load(shop: Deployed, tmp_path: Path, options: list[str]) -> None:
    served = _runtime(shop, tmp_path, *options)
    acked_events: set[str] = set()
    acked_codes: set[str] = set()
    failures: list[str] = []

    def client(n: int) -> None:
        with httpx.Client(headers={"X-API-Key": shop.key}, timeout=10) as http:
            for i in range(10_000):
                try:
                    decision = http.post(
                        f"{served.url}/v1/decisions",
                        json={"profile_id": f"p{n}-{i}", "placements": [{"placement": "sidebar"}]},
                    )
                    if decision.status_code == 200:
                        acked_codes.update(
                            o["tracking_code"]
                            for p in decision.json()["placements"]
                            for o in p["offers"]
                        )
                    events = [
                        {
                            "name": "view",
                            "offer": "BIG",
                            "profile_id": f"p{n}",
                            "event_id": f"{n}.{i}.{j}",
                        }
                        for j in range(5)
                    ]
                    answer = http.post(f"{served.url}/v1/events", json={"events": events})
                    if answer.status_code == 200:
                        acked_events.update(e["event_id"] for e in events)
                    else:
                        failures.append(answer.text)
                except httpx.HTTPError:
                    return  # the server is gone

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    while len(acked_events) < 300:
        time.sleep(0.01)
    served.process.send_signal(signal.SIGKILL)
    served.process.wait(timeout=30)
    for t in threads:
        t.join()
    assert not failures
    with shop.db.session() as s:
        stored_events = set(s.scalars(select(EventRow.event_id)))
        stored_codes = set(s.scalars(select(PropositionRow.tracking_code)))
    assert acked_events <= stored_events and len(acked_events) >= 300
    assert acked_codes <= stored_codes


@pytest.mark.slow
def test_a_stopped_runtime_writes_what_it_accepted(shop: Deployed, tmp_path: Path) -> None:
    served = _runtime(shop, tmp_path)
    with httpx.Client(headers={"X-API-Key": shop.key}) as http:
        answer = http.post(
            f"{served.url}/v1/events",
            json={
                "events": [{"name": "view", "offer": "BIG", "profile_id": "v", "event_id": "last"}]
            },
        )
    assert answer.json()["stored"] == 1
    served.process.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully (the lifespan drains the recorder), then lets the
    # signal end the process as it would have
    assert served.process.wait(timeout=30) in (0, -signal.SIGTERM)
    with shop.db.session() as s:
        assert s.scalars(select(EventRow.event_id)).all() == ["last"]
