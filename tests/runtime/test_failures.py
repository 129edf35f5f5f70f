"""When a dependency fails (docs/runtime.md, "Failures"): the database crashed under load,
Redis killed or restarted empty. Each test crashes servers of its own
(tests/private_servers.py), never the shared ones, and talks to real nodes over HTTP.

What holds: a request the node cannot answer is a 503 with Retry-After and a sentence for
people (never a 500, never an exception's name); decisions go on, degraded, with what can
still be decided safely; /readyz tells each dependency's state; nothing acknowledged is
lost; no cap or inventory is exceeded; and Redis's counts converge to the history."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import httpx
import pytest
import redis
from sqlalchemy import func, select

from overture.store import Database
from overture.store.history import EventRow, PropositionRow
from tests.deployed import Deployed, deploy, deploy_demo, deploy_shop
from tests.private_servers import PrivatePostgres, PrivateRedis, private_postgres, private_redis
from tests.runtime.catalogs import SHOP
from tests.runtime.test_nodes import nodes

pytestmark = [pytest.mark.slow, pytest.mark.integration]

FAST = {"probe_seconds": 0.2, "settle_after_seconds": 1.0}
CLASS_NAME = re.compile(r"\b[A-Za-z]*(Error|Exception)\b|\w+\.\w+\.\w+")


# The SHOP whose suppression covers the deals only: HELLO is then an offer no policy counts
# (in the SHOP itself, every offer is under the suppression, so a degraded answer is the
# placement's default content)
ALL_OFFERS = "{name: no_after_close, kind: suppression, after: rejected}"
DEALS_ONLY = SHOP.replace(ALL_OFFERS, ALL_OFFERS[:-1] + ", categories: [deals]}")


@pytest.fixture
def pg() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


@pytest.fixture
def rs() -> Iterator[PrivateRedis]:
    with private_redis() as server:
        yield server


@contextlib.contextmanager
def deployed(url: str, make: Callable[[Database], str] = deploy_shop) -> Iterator[Deployed]:
    db = Database(url)
    db.upgrade()
    try:
        yield Deployed(db, make(db))
    finally:
        db.dispose()


def assert_unavailable(answer: httpx.Response, *words: str) -> None:
    """A 503 for people: Retry-After, a sentence naming what failed, no exception name."""
    assert answer.status_code == 503, answer.text
    assert int(answer.headers["retry-after"]) >= 1
    assert answer.headers["content-type"] == "application/problem+json"
    detail = answer.json()["detail"]
    assert not CLASS_NAME.search(detail), detail
    assert "retry" in detail, detail
    for word in words:
        assert word in detail, detail


def wait_for(check: Callable[[], bool], seconds: float = 20, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.1)


def metric(url: str, line_start: str) -> float | None:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return None


def banner(client: httpx.Client, url: str, visitor: str) -> httpx.Response:
    body = {"profile_id": visitor, "placements": [{"placement": "banner"}]}
    return client.post(f"{url}/v1/decisions", json=body)


def offers(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [o["offer"] for p in answer.json()["placements"] for o in p["offers"]]


# -- the database down ---------------------------------------------------------------------
def test_with_the_database_down_requests_are_refused_with_503_and_retry_after(
    pg: PrivatePostgres,
) -> None:
    """Decisions to record and events: 503 with Retry-After, nothing stored. A test
    decision (record: false) is still answered from what the node has (the profile as it
    last read it, the counts it holds), marked degraded; without the profile, 503. Once
    the database is back, requests are answered as before."""
    with (
        deployed(pg.url, deploy_demo) as demo,
        nodes(demo.db, 1, profile_cache_seconds=0.0, **FAST) as (url,),
        httpx.Client(headers={"X-API-Key": demo.key}, timeout=30) as client,
    ):
        ask = {"profile_id": "C0000001", "placements": [{"placement": "web_home_hero"}]}
        first = client.post(f"{url}/v1/decisions", json=ask)
        offer = offers(first)[0]
        assert "degraded" not in first.json()
        event = {"name": "presented", "offer": offer, "profile_id": "C0000001", "event_id": "e1"}

        pg.crash()
        assert_unavailable(client.post(f"{url}/v1/decisions", json=ask), "database")
        assert_unavailable(client.post(f"{url}/v1/events", json=event), "database")
        dry = client.post(f"{url}/v1/decisions", json={**ask, "record": False})
        assert dry.status_code == 200, dry.text
        assert dry.json()["degraded"] == ["profile"]
        assert any("database" in w for w in dry.json()["warnings"])
        degraded = 'overture_degraded_decisions_total{environment="staging",reason="profile"}'
        assert metric(url, degraded) == 1.0
        unknown = {**ask, "profile_id": "C0000002", "record": False}
        assert_unavailable(client.post(f"{url}/v1/decisions", json=unknown), "database")
        wait_for(lambda: metric(url, 'overture_dependency_up{dependency="database"}') == 0.0)

        pg.start()
        wait_for(lambda: client.post(f"{url}/v1/decisions", json=ask).status_code == 200)
        again = client.post(f"{url}/v1/decisions", json=ask)
        assert "degraded" not in again.json()
        assert client.post(f"{url}/v1/events", json=event).json()["stored"] == 1
        with demo.db.session() as s:
            assert s.scalars(select(EventRow.event_id)).all() == ["e1"]


@pytest.mark.parametrize("counters", ["database", "redis"])
def test_the_database_crashing_under_load_loses_nothing_acknowledged(
    pg: PrivatePostgres, counters: str
) -> None:
    """Two nodes under load, the database crashed for a few seconds: every answer is a 200
    or a 503 with Retry-After; every proposition and event acknowledged is in the history;
    no cap or inventory exceeded; and Redis's counts are the history's once settled (claims
    whose write failed taken back)."""
    with contextlib.ExitStack() as stack:
        shop = stack.enter_context(deployed(pg.url))
        settings: dict[str, Any] = dict(FAST)
        if counters == "redis":
            settings["redis"] = stack.enter_context(private_redis()).url
        urls = stack.enter_context(nodes(shop.db, 2, **settings))
        load = Load(shop.key, urls)
        load.start()
        load.wait(150)
        pg.crash()
        time.sleep(3)
        pg.start()
        outage = load.count()
        load.wait(outage + 150, seconds=40)
        load.stop()
        load.check()
        assert load.refused, "the outage was not felt"
        with shop.db.session() as s:
            codes = set(s.scalars(select(PropositionRow.tracking_code)))
            event_ids = set(s.scalars(select(EventRow.event_id)))
        assert load.codes <= codes
        assert load.event_ids <= event_ids
        assert_caps_held(shop.db)
        if counters == "redis":
            wait_for(lambda: redis_matches_history(settings["redis"], shop.db), 30, "converge")


# -- Redis down, restarted empty -----------------------------------------------------------
def test_with_redis_down_offers_no_policy_counts_are_still_decided(
    database: Database, rs: PrivateRedis
) -> None:
    """Redis killed: a decision leaves out the offers capping, suppression or inventory
    count (their counts cannot be checked) and proposes the others, recorded in the
    database; the answer and /metrics say it was degraded. An event that would count is
    refused (503: it could not be counted); one that counts for nothing is stored. Once
    Redis is back (empty), the node rebuilds the counts from the history, what it recorded
    meanwhile included, and decides as before."""
    assert DEALS_ONLY != SHOP
    shop = Deployed(database, deploy(database, {"shop.yaml": DEALS_ONLY}))
    with (
        nodes(shop.db, 1, redis=rs.url, **FAST) as (url,),
        httpx.Client(headers={"X-API-Key": shop.key}, timeout=30) as client,
    ):
        assert offers(banner(client, url, "alice")) == ["BIG"]
        rs.kill()
        answer = banner(client, url, "alice")
        assert offers(answer) == ["HELLO"]  # the fallback: no policy counts it
        assert answer.json()["degraded"] == ["counts"]
        assert any("Redis" in w for w in answer.json()["warnings"])
        hello = answer.json()["placements"][0]["offers"][0]["tracking_code"]
        seen = {"name": "view", "tracking_code": hello, "event_id": "seen"}
        assert client.post(f"{url}/v1/events", json=seen).json()["stored"] == 1
        custom = {"name": "signup", "offer": "BIG", "profile_id": "alice", "event_id": "custom"}
        assert client.post(f"{url}/v1/events", json=custom).json()["stored"] == 1
        counted = {"name": "view", "offer": "BIG", "profile_id": "alice", "event_id": "email"}
        assert_unavailable(client.post(f"{url}/v1/events", json=counted), "Redis")
        degraded = 'overture_degraded_decisions_total{environment="staging",reason="counts"}'
        assert metric(url, degraded) == 1.0
        assert metric(url, 'overture_dependency_up{dependency="redis"}') == 0.0

        rs.start()  # empty
        wait_for(lambda: "degraded" not in banner(client, url, "bob").json(), what="rebuilt")
        # alice's HELLO, recorded while Redis was down, is counted again
        members = cast(list[bytes], rs.client().zrange("overture:staging:visitor:alice:p", 0, -1))
        assert any(m.startswith(hello.encode()) for m in members)
        assert client.post(f"{url}/v1/events", json=counted).json()["stored"] == 1
        # the emailed BIG counts: with the decided one, BIG's 2 a week are spent
        assert offers(banner(client, url, "alice")) == ["RARE"]
        assert offers(banner(client, url, "alice")) == ["RARE"]
        assert offers(banner(client, url, "alice")) == ["HELLO"]


def test_an_event_refused_while_redis_was_down_counts_once_sent_again(
    shop: Deployed, rs: PrivateRedis
) -> None:
    """A rejection posted while Redis is down is not stored (503), so that the client's
    retry stores and counts it: never stored without its count (a retry would then be a
    duplicate and the count never made). Its suppression holds from then on."""
    with (
        nodes(shop.db, 1, redis=rs.url, **FAST) as (url,),
        httpx.Client(headers={"X-API-Key": shop.key}, timeout=30) as client,
    ):
        answer = banner(client, url, "carol")
        assert offers(answer) == ["BIG"]
        code = answer.json()["placements"][0]["offers"][0]["tracking_code"]
        close = {"name": "close", "tracking_code": code, "event_id": "carol-closed"}
        rs.kill()
        assert_unavailable(client.post(f"{url}/v1/events", json=close), "Redis")
        with shop.db.session() as s:
            assert s.scalars(select(EventRow.event_id)).all() == []
        rs.start()
        wait_for(lambda: client.post(f"{url}/v1/events", json=close).status_code == 200)
        assert client.post(f"{url}/v1/events", json=close).json()["duplicates"] == 1
        for _ in range(3):  # closed BIG: suppressed for ever; RARE twice a week
            assert "BIG" not in offers(banner(client, url, "carol"))


def test_redis_restarted_empty_under_load_never_lets_a_cap_be_exceeded(
    shop: Deployed, rs: PrivateRedis
) -> None:
    """Two nodes under load, Redis restarted empty (no persistence): they notice, one of
    them rebuilds the counts from the history, and meanwhile nothing a policy counts is
    proposed. No profile gets an offer past its weekly cap, no inventory is overspent, and
    Redis's counts end up the history's."""
    with nodes(shop.db, 2, redis=rs.url, **FAST) as urls:
        load = Load(shop.key, urls, events=False)
        load.start()
        load.wait(150)
        rs.kill()
        rs.start()
        restarted = load.count()
        load.wait(restarted + 250, seconds=40)
        load.stop()
        load.check()
        assert_caps_held(shop.db)
        wait_for(lambda: redis_matches_history(rs.url, shop.db), 30, "converge")


# -- /readyz -------------------------------------------------------------------------------
def test_readyz_tells_each_dependency_and_its_state(pg: PrivatePostgres, rs: PrivateRedis) -> None:
    def ready() -> tuple[int, dict[str, Any]]:
        answer = httpx.get(f"{url}/readyz")
        return answer.status_code, answer.json()

    with deployed(pg.url) as shop, nodes(shop.db, 1, redis=rs.url, **FAST) as (url,):
        status, body = ready()
        assert (status, body["status"], body["ready"]) == (200, "ready", True)
        deps = body["dependencies"]
        assert deps["database"]["state"] == "up" and deps["redis"]["state"] == "up"
        assert deps["redis"]["counters"] == {"staging": "ready"}
        assert body["environments"]["staging"]["deployment"] == 1

        rs.kill()
        wait_for(lambda: ready()[1]["dependencies"]["redis"]["state"] == "down")
        status, body = ready()
        assert (status, body["status"], body["ready"]) == (200, "degraded", True)
        # anyone may read /readyz: no host, port or driver text (the node's log has them)
        assert (
            body["dependencies"]["redis"]["error"]
            == "redis does not answer (the node's log says why)"
        )

        pg.crash()
        wait_for(lambda: ready()[0] == 503)
        status, body = ready()
        assert (body["status"], body["ready"]) == ("unavailable", False)
        assert body["dependencies"]["database"]["state"] == "down"
        assert "127.0.0.1" not in body["dependencies"]["database"]["error"]
        assert str(pg.port) not in body["dependencies"]["database"]["error"]

        pg.start()
        rs.start()
        wait_for(lambda: ready()[1]["status"] == "ready")
        assert ready()[0] == 200


# -- the load and its checks ---------------------------------------------------------------
class Load:
    """Clients posting decisions (30 profiles, banner and sidebar: the SHOP's weekly caps
    and RARE's 5 a day) and, with `events`, batches of events, until stopped; what was
    acknowledged and every status seen."""

    def __init__(self, key: str, urls: list[str], *, events: bool = True) -> None:
        self.key = key
        self.urls = urls
        self.events = events
        self.codes: set[str] = set()
        self.event_ids: set[str] = set()
        self.statuses: list[tuple[int, str | None, str]] = []  # status, Retry-After, body
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(n,)) for n in range(4)]
        self._lock = threading.Lock()

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def count(self) -> int:
        with self._lock:
            return sum(s == 200 for s, _r, _b in self.statuses)

    def wait(self, answered: int, seconds: float = 30) -> None:
        wait_for(lambda: self.count() >= answered, seconds, f"{answered} answers")

    @property
    def refused(self) -> int:
        return sum(s == 503 for s, _r, _b in self.statuses)

    def check(self) -> None:
        for status, retry, body in self.statuses:
            assert status in (200, 503), body
            if status == 503:
                assert retry is not None and int(retry) >= 1, body
                assert not CLASS_NAME.search(body), body

    def _seen(self, answer: httpx.Response) -> None:
        with self._lock:
            self.statuses.append(
                (answer.status_code, answer.headers.get("retry-after"), answer.text)
            )

    def _client(self, n: int) -> None:
        with httpx.Client(headers={"X-API-Key": self.key}, timeout=30) as http:
            i = 0
            while not self._stop.is_set():
                i += 1
                url = self.urls[i % len(self.urls)]
                visitor = f"v{(n * 7 + i) % 30}"
                placement = "banner" if i % 2 else "sidebar"
                body = {"profile_id": visitor, "placements": [{"placement": placement}]}
                answer = http.post(f"{url}/v1/decisions", json=body)
                self._seen(answer)
                if answer.status_code == 200:
                    with self._lock:
                        self.codes.update(
                            o["tracking_code"]
                            for p in answer.json()["placements"]
                            for o in p["offers"]
                        )
                if not self.events:
                    continue
                # for HELLO: one counted (an untracked presentation), one custom
                events = [
                    {
                        "name": name,
                        "offer": "HELLO",
                        "profile_id": visitor,
                        "event_id": f"{n}.{i}{name}",
                    }
                    for name in ("view", "hover")
                ]
                answer = http.post(f"{url}/v1/events", json={"events": events})
                self._seen(answer)
                if answer.status_code == 200:
                    with self._lock:
                        self.event_ids.update(e["event_id"] for e in events)


def assert_caps_held(db: Database) -> None:
    """No visitor was proposed a deal more than twice (the weekly cap), nor RARE more than
    5 times a day (its inventory)."""
    with db.session() as s:
        rows = s.execute(
            select(PropositionRow.profile_id, PropositionRow.offer_code, func.count())
            .where(PropositionRow.offer_code.in_(["BIG", "RARE"]))
            .group_by(PropositionRow.profile_id, PropositionRow.offer_code)
        ).all()
        today = dt.datetime.now(dt.UTC).date()
        rare = s.scalar(
            select(func.count()).where(
                PropositionRow.offer_code == "RARE",
                PropositionRow.decided_at >= dt.datetime(today.year, today.month, today.day),
            )
        )
    over = {(p, o): n for p, o, n in rows if n > 2}
    assert not over, f"over the weekly cap of 2: {over}"
    assert rare is not None and rare <= 5


def redis_matches_history(url: str, db: Database, prefix: str = "overture") -> bool:
    """Whether Redis counts what the history holds: each visitor's presented set is its
    propositions and untracked presentations, RARE's counter today its propositions today,
    and no claim is left unsettled."""
    client = redis.Redis.from_url(url)
    try:
        if client.zcard(f"{prefix}:staging:claims"):
            return False
        with db.session() as s:
            wanted: dict[str | None, set[str]] = {}
            for profile, code in s.execute(
                select(PropositionRow.profile_id, PropositionRow.tracking_code)
            ):
                wanted.setdefault(profile, set()).add(code)
            for profile, event_id in s.execute(
                select(EventRow.profile_id, EventRow.event_id).where(
                    EventRow.counted.is_(True), EventRow.kind == "presented"
                )
            ):
                wanted.setdefault(profile, set()).add(event_id)
            today = dt.datetime.now(dt.UTC).date()
            rare = s.scalar(
                select(func.count()).where(
                    PropositionRow.offer_code == "RARE",
                    PropositionRow.decided_at >= dt.datetime(today.year, today.month, today.day),
                )
            )
        for profile, members in wanted.items():
            if profile is None:
                continue  # anonymous: nothing counted per profile
            stored = cast(
                list[bytes], client.zrange(f"{prefix}:staging:visitor:{profile}:p", 0, -1)
            )
            if {m.decode().split("|", 1)[0] for m in stored} != members:
                return False
        used = client.get(f"{prefix}:staging:inventory:RARE:{today.isoformat()}")
        return int(used or 0) == rare
    finally:
        client.close()
