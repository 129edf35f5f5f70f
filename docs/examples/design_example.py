"""The design API from a client's side (run by tests/docs/test_examples.py).

The application runs in-process on a temporary SQLite database; against a server started
with `overture serve`, use `httpx.Client(base_url="http://127.0.0.1:8000")` instead.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi.testclient import TestClient

from overture.demo import CATALOG_PATH
from overture.design import access
from overture.design.app import create_app
from overture.design.catalog import Actor
from overture.store import Database


def main() -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        db = Database(str(Path(folder) / "overture.db"))
        db.upgrade()  # what `overture serve` and `overture db upgrade` do
        with db.session() as s:  # what `overture users add ann -r administrator` does
            access.create_operator(s, Actor("setup"), "ann", "a long passphrase", ["administrator"])
        with TestClient(create_app(db)) as api:
            result = walk_through(api)
        db.dispose()
    return result


def walk_through(api: TestClient) -> dict[str, object]:
    token = api.post(
        "/v1/design/auth/login", json={"name": "ann", "password": "a long passphrase"}
    ).json()["token"]
    api.headers["Authorization"] = f"Bearer {token}"

    # Import the demo catalog: every offer arrives as a draft.
    files = {p.name: p.read_text() for p in sorted(CATALOG_PATH.glob("*.yaml"))}
    imported = api.post("/v1/design/catalog/import", json={"files": files}).json()

    # Add an offer: validated against the whole catalog on save.
    offer = {
        "code": "SAV-WINTER",
        "name": "Winter saver",
        "category": "savings_accounts",
        "eligibility": "age >= 18",
        "content": {"title": "4% until March", "body": "Save a little every month."},
    }
    created = api.post("/v1/design/offers", json=offer)
    etag = created.headers["ETag"]  # its version: every change must send it back

    # Submit, then approve the revision just read (If-Match each time).
    submitted = api.post("/v1/design/offers/SAV-WINTER/submit", headers={"If-Match": etag})
    approved = api.post(
        "/v1/design/offers/SAV-WINTER/approve",
        headers={"If-Match": submitted.headers["ETag"]},
        json={"comment": "ok for Q1"},
    )

    # A change based on an old version is refused with the current one.
    stale = api.put("/v1/design/offers/SAV-WINTER", json=offer, headers={"If-Match": etag})

    # A mistake is answered with every problem, located, as `overture validate` prints it.
    wrong = api.post("/v1/design/offers", json={**offer, "code": "X", "eligibility": "agee > 1"})

    # Only approved revisions deploy: approve the demo's drafts, then plan and deploy.
    drafts = api.get("/v1/design/offers", params={"status": "draft", "limit": 500}).json()
    for item in drafts["items"]:
        code = item["key"]
        version = api.post(
            f"/v1/design/offers/{code}/submit", headers={"If-Match": f'"{item["version"]}"'}
        ).headers["ETag"]
        api.post(f"/v1/design/offers/{code}/approve", headers={"If-Match": version})
    plan = api.get("/v1/design/environments/staging/plan").json()
    deployed = api.post("/v1/design/environments/staging/deployments", json={"comment": "Q1"})
    production = api.post("/v1/design/environments/production/deployments", json={})

    # Production runs only what ran on staging: change an offer, approve it, and try.
    current = api.get("/v1/design/offers/SAV-WINTER")
    changed = {**current.json()["spec"], "name": "Winter saver, 4.5%"}
    edited = api.put(
        "/v1/design/offers/SAV-WINTER", json=changed, headers={"If-Match": current.headers["ETag"]}
    )
    api.post("/v1/design/offers/SAV-WINTER/approve", headers={"If-Match": edited.headers["ETag"]})
    too_early = api.post("/v1/design/environments/production/deployments", json={})
    return {
        "imported offers": len(imported["sections"]["offers"]["added"]),
        "created": (created.status_code, etag, created.json()["status"]),
        "approved": approved.json()["status"],
        "stale": (stale.status_code, stale.json()["current_version"]),
        "wrong": (wrong.status_code, wrong.json()["errors"][0]["message"]),
        "plan adds": len(plan["changes"]["offers"]["added"]),
        "deployed": (deployed.json()["number"], production.json()["number"]),
        "edited": edited.json()["status"],
        "production first": (too_early.status_code, too_early.json()["detail"]),
    }


if __name__ == "__main__":
    for key, value in main().items():
        print(f"{key}: {value}")
