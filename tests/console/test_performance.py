"""The console's performance pages, and demo traffic through the runtime's own API."""

from __future__ import annotations

from typing import Any

from overture.demo import profiles
from overture.demo.traffic import appeal, base_rate, drive
from overture.history import reports
from overture.history.reports import Period
from tests.console.client import add_operators, console
from tests.deployed import Deployed


def _traffic(demo: Deployed, days: int = 5) -> None:
    customers = profiles.generate(300, as_of=profiles.today()).to_pylist()
    with demo.client(accept_decision_times=True) as api:

        def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            answer = api.post(path, json=body)
            assert answer.status_code == 200, answer.text
            result: dict[str, Any] = answer.json()
            return result

        sent = drive(post, customers, days=days, visits_per_day=40, seed=1)
    assert sent.decisions > 100 and sent.events > 100 and sent.days == days + 1


def test_demo_traffic_fills_past_days_with_rates_that_differ(demo: Deployed) -> None:
    _traffic(demo)
    with demo.db.engine.connect() as conn:
        by_day = reports.report(conn, "staging", "day", Period.last(10))
        by_channel = {
            r.key: r for r in reports.report(conn, "staging", "channel", Period.last(10)).rows
        }
    assert len(by_day.rows) >= 5  # decisions on past days, as `at` said
    assert by_channel["email"].presented == 0 and by_channel["web"].presented > 0
    assert base_rate("ACC-STUDENT") != base_rate("CC-GOLD")
    student = {"age": 20, "is_student": True}
    assert appeal("ACC-STUDENT", student) > appeal("ACC-STUDENT", {"age": 50})


def test_a_decision_time_is_refused_outside_a_demo_server(demo: Deployed) -> None:
    with demo.client() as api:
        answer = api.post(
            "/v1/decisions",
            json={"placements": [{"placement": "web_home_hero"}], "at": "2026-01-01T00:00:00Z"},
        )
    assert answer.status_code == 422 and "demo server" in answer.text


def test_the_performance_pages_show_the_reports_figures(demo: Deployed) -> None:
    _traffic(demo, days=3)
    add_operators(demo.db)
    c = console(demo.db, "viewer")
    with demo.db.engine.connect() as conn:
        total = reports.report(conn, "staging", "offer", Period.last(30)).total
    overview = c.get("performance", params={"env": "staging"})
    assert overview.status_code == 200
    assert f"{total.propositions:,}" in overview.text and "Best offers" in overview.text
    assert 'id="perf-chart"' in overview.text and "static/plotly.min.js" in overview.text
    for view in ("offer", "placement", "channel", "category", "segment", "day", "hour"):
        page = c.get(f"performance/{view}", params={"env": "staging"})
        assert page.status_code == 200, view
        assert '<table class="figures">' in page.text
    text = c.get("performance/placement", params={"env": "staging", "format": "csv"}).text
    assert text.splitlines()[-1].startswith("total,")
    with demo.db.engine.connect() as conn:  # (left open, it held the schema: see integration)
        offer = next(r.key for r in reports.report(conn, "staging", "offer", Period.last(30)).rows)
    assert "Performance in staging" in c.get(f"offers/{offer}").text
    assert "The week in staging" in c.get("").text
    # the demo button is a demo server's, and an administrator's
    assert "Send demo traffic" not in overview.text
    assert c.post("performance/-/demo-traffic", {"days": "2"}).status_code == 403
