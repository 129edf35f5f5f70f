"""The reports' daily rollup equals a GROUP BY over the raw history, whatever arrives:
decisions for identified and anonymous profiles, presentations and responses by tracking
code, events by offer without one, late events, events replayed with the same id, custom
events, events of another day; on SQLite and PostgreSQL, and after a rebuild."""

from __future__ import annotations

import datetime as dt
import random

from overture.history import rollups
from tests.deployed import Deployed

PLACEMENTS = ["web_home_hero", "web_account_sidebar", "app_home_card", "email_banner"]


def test_the_rollup_kept_as_history_arrives_equals_the_history_grouped(demo: Deployed) -> None:
    rng = random.Random(7)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    posted = 0
    with demo.client() as api:
        codes: list[tuple[str, str]] = []
        for i in range(120):
            body = {
                "placements": [{"placement": rng.choice(PLACEMENTS)}],
                **({"profile_id": f"C{rng.randint(1, 300):07d}"} if i % 5 else {}),
            }
            answer = api.post("/v1/decisions", json=body)
            assert answer.status_code == 200, answer.text
            for placement in answer.json()["placements"]:
                for p in placement["offers"]:
                    codes.append((p["tracking_code"], p["offer"]))
        assert codes
        events = []
        for n, (code, offer) in enumerate(codes):
            events.append({"name": "presented", "tracking_code": code, "event_id": f"p{n}"})
            roll = rng.random()
            if roll < 0.3:
                events.append({"name": "accepted", "tracking_code": code, "event_id": f"a{n}"})
            elif roll < 0.5:
                late = (now - dt.timedelta(days=3, hours=n % 24)).isoformat() + "Z"
                events.append(
                    {"name": "rejected", "tracking_code": code, "event_id": f"r{n}", "at": late}
                )
            if n % 7 == 0:  # by offer and profile, no tracking code (an email sent elsewhere)
                events.append(
                    {
                        "name": "contact",
                        "offer": offer,
                        "profile_id": "C0000001",
                        "channel": "email",
                        "event_id": f"e{n}",
                    }
                )
            if n % 11 == 0:
                events.append({"name": "page_view", "profile_id": "C0000002", "event_id": f"v{n}"})
        for start in range(0, len(events), 50):
            answer = api.post("/v1/events", json={"events": events[start : start + 50]})
            assert answer.status_code == 200, answer.text
            posted += answer.json()["stored"]
        # the same events again: idempotent, nothing more is counted
        replay = api.post("/v1/events", json={"events": events[:50]})
        assert replay.json()["stored"] == 0

    with demo.db.engine.connect() as conn:
        kept = rollups.maintained(conn)
        truth = rollups.from_history(conn)
    assert kept == truth
    totals = {
        m: sum(r[len(rollups.KEY) + i] for r in kept if r[6] == rollups.ALL)
        for i, m in enumerate(rollups.MEASURES)
    }
    assert totals["propositions"] == len(codes)
    assert totals["presented"] >= len(codes) and totals["accepted"] > 0
    assert totals["rejected"] > 0
    assert any(r[6] != rollups.ALL for r in kept)  # by segment too
    days = {r[1] for r in kept}
    assert len(days) >= 2  # late events went to their own days

    with demo.db.engine.begin() as conn:
        rollups.rebuild(conn)
    with demo.db.engine.connect() as conn:
        assert rollups.maintained(conn) == truth
