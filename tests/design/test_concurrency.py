"""Operators working at once, over real HTTP to a real server, on SQLite and PostgreSQL:
of two edits based on the same version one wins and the other gets 409 with the current
version; nothing is lost or half-written; concurrent deployments get distinct numbers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import httpx
import pytest

from overture.catalog.validate import validate_catalog
from overture.design import access, transfer
from overture.design.catalog import Actor, assemble
from overture.store import Database
from tests.design.api import PASSWORD
from tests.design.helpers import approve_all, demo_files
from tests.design.server import live_server


@pytest.fixture
def server(database: Database) -> Iterator[str]:
    with database.session() as s:
        access.create_operator(s, Actor("setup"), "ann", PASSWORD, ["administrator"])
        access.create_operator(s, Actor("setup"), "olga", PASSWORD, ["offer_manager"])
        access.create_operator(s, Actor("setup"), "oscar", PASSWORD, ["offer_manager"])
        transfer.import_catalog(s, Actor("setup"), demo_files())
    with live_server(database) as url:
        yield url


def _client(url: str, name: str) -> httpx.Client:
    token = httpx.post(
        f"{url}/v1/design/auth/login", json={"name": name, "password": PASSWORD}
    ).json()["token"]
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def _race(*actions: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """Run the actions at the same moment, each in its own thread."""
    barrier = threading.Barrier(len(actions))
    results: list[Any] = [None] * len(actions)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = actions[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _edit(client: httpx.Client, code: str, etag: str, weight: float) -> Callable[[], Any]:
    def put() -> httpx.Response:
        spec = client.get(f"/v1/design/offers/{code}").json()["spec"]
        spec["weights"] = [{"value": weight}]
        return client.put(f"/v1/design/offers/{code}", json=spec, headers={"If-Match": etag})

    return put


@pytest.mark.parametrize("approved_first", [False, True], ids=["draft", "approved"])
def test_two_operators_edit_the_same_offer(
    server: str, database: Database, approved_first: bool
) -> None:
    if approved_first:  # then each edit makes a new pending revision: the race is on it too
        with database.session() as s:
            approve_all(s)
    olga, oscar = _client(server, "olga"), _client(server, "oscar")
    for round_ in range(6):
        etag = olga.get("/v1/design/offers/CC-GOLD").headers["etag"]
        weights = {"olga": 10.0 + round_, "oscar": 50.0 + round_}
        first, second = _race(
            _edit(olga, "CC-GOLD", etag, weights["olga"]),
            _edit(oscar, "CC-GOLD", etag, weights["oscar"]),
        )
        statuses = sorted([first.status_code, second.status_code])
        assert statuses == [200, 409], (first.text, second.text)
        winner, loser = (first, second) if first.status_code == 200 else (second, first)
        problem = loser.json()
        assert loser.headers["content-type"].startswith("application/problem+json")
        assert "someone else" in problem["detail"] or "has changed" in problem["detail"]
        now = olga.get("/v1/design/offers/CC-GOLD")
        # the winner's change is what is stored, whole; the loser is told the version to reread
        assert now.json()["spec"]["weights"] == winner.json()["spec"]["weights"]
        assert now.headers["etag"] == winner.headers["etag"]
        if "current_version" in problem:
            assert f'"{problem["current_version"]}"' == now.headers["etag"]
    audit = _client(server, "ann").get(
        "/v1/design/audit", params={"action": "offers.update", "key": "CC-GOLD"}
    )
    assert audit.json()["total"] == 6  # one accepted edit per round, no more, no fewer
    revisions = olga.get("/v1/design/offers/CC-GOLD/revisions").json()
    assert len({r["revision"] for r in revisions}) == len(revisions)
    assert len(revisions) == (2 if approved_first else 1)  # edits go to the one pending revision


def test_concurrent_deployments_get_distinct_numbers(server: str, database: Database) -> None:
    with database.session() as s:
        approve_all(s)
    ann = _client(server, "ann")
    answers = _race(
        *[
            (
                lambda i=i: ann.post(
                    "/v1/design/environments/staging/deployments", json={"comment": f"racer {i}"}
                )
            )
            for i in range(4)
        ]
    )
    accepted = [a for a in answers if a.status_code == 201]
    assert all(a.status_code in (201, 409) for a in answers), [a.text for a in answers]
    assert accepted, [a.text for a in answers]
    numbers = sorted(a.json()["number"] for a in accepted)
    assert numbers == list(range(1, len(accepted) + 1))
    history = ann.get("/v1/design/environments/staging/deployments").json()
    assert sorted(d["number"] for d in history["items"]) == numbers


def test_two_changes_valid_alone_never_both_commit(server: str, database: Database) -> None:
    """Deleting a category while adding an offer in it: each is valid against the catalog
    it read; together they would leave an offer in a missing category. One must lose."""
    ann = _client(server, "ann")
    for round_ in range(8):
        name = f"tmp_{round_}"
        created = ann.post(
            "/v1/design/categories", json={"name": name, "parent": "everyday_banking"}
        )
        assert created.status_code == 201, created.text
        etag = created.headers["etag"]
        offer = {"code": f"TMP-{round_}", "name": "Temporary", "category": name}
        removed, added = _race(
            partial(ann.delete, f"/v1/design/categories/{name}", headers={"If-Match": etag}),
            partial(ann.post, "/v1/design/offers", json=offer),
        )
        outcomes = (removed.status_code, added.status_code)
        assert outcomes in ((204, 422), (409, 201), (422, 201)), (removed.text, added.text)
    with database.session() as s:
        assert validate_catalog(assemble(s)).ok  # what is stored is a valid catalog
