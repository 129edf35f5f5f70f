"""Offer performance reports: every figure an SQL aggregate that adds up, the Wilson
interval, the basis of each rate, hours agreeing with days, filters, CSV."""

from __future__ import annotations

import datetime as dt
import math
import random

import pytest

from overture.history import reports
from overture.history.reports import Period, wilson
from tests.deployed import Deployed


def test_the_wilson_interval_matches_its_formula() -> None:
    assert wilson(0, 0) is None
    low, high = wilson(50, 100) or (0, 0)
    assert math.isclose(low, 0.4038, abs_tol=1e-4) and math.isclose(high, 0.5962, abs_tol=1e-4)
    low, high = wilson(0, 10) or (1, 1)
    assert low == 0 and math.isclose(high, 0.2775, abs_tol=1e-4)
    assert wilson(12, 10) == wilson(10, 10)  # more acceptances than trials: capped


def _traffic(demo: Deployed) -> int:
    rng = random.Random(3)
    proposed = 0
    with demo.client() as api:
        events = []
        for i in range(80):
            placement = ["web_home_hero", "email_banner", "app_home_card"][i % 3]
            answer = api.post(
                "/v1/decisions",
                json={"profile_id": f"C{i + 1:07d}", "placements": [{"placement": placement}]},
            ).json()
            for p in answer["placements"][0]["offers"]:
                proposed += 1
                if placement != "email_banner":  # email reports no presentations
                    events.append({"name": "presented", "tracking_code": p["tracking_code"]})
                if rng.random() < 0.4:
                    events.append({"name": "accepted", "tracking_code": p["tracking_code"]})
        assert api.post("/v1/events", json={"events": events}).status_code == 200
    return proposed


def test_rows_add_up_to_the_total_in_every_dimension(demo: Deployed) -> None:
    proposed = _traffic(demo)
    period = Period.last(7)
    with demo.db.engine.connect() as conn:
        for by in ("offer", "placement", "channel", "category", "day", "hour"):
            rep = reports.report(conn, "staging", by, Period.last(2) if by == "hour" else period)
            assert rep.total.propositions == proposed, by
            for measure in ("propositions", "presented", "accepted", "rejected", "trials"):
                assert sum(getattr(r, measure) for r in rep.rows) == getattr(rep.total, measure)
        by_channel = {r.key: r for r in reports.report(conn, "staging", "channel", period).rows}
        assert by_channel["web"].basis == "presentations"
        assert by_channel["email"].basis == "propositions"  # no presentations reported
        assert by_channel["email"].trials == by_channel["email"].propositions
        web = by_channel["web"]
        assert web.rate == web.accepted / web.presented
        assert web.low is not None and web.high is not None and web.low < web.rate < web.high
        segments = reports.report(conn, "staging", "segment", period)
        assert all(r.key != "*" for r in segments.rows) and segments.rows
        filtered = reports.report(conn, "staging", "offer", period, {"channel": "email"})
        assert filtered.total.propositions == by_channel["email"].propositions
        one = segments.rows[0].key
        in_segment = reports.report(conn, "staging", "offer", period, {"segment": one})
        assert in_segment.total.propositions == segments.rows[0].propositions
        text = reports.as_csv(reports.report(conn, "staging", "placement", period))
        assert text.splitlines()[0].startswith("placement,propositions,presented,accepted")
        assert text.splitlines()[-1].startswith("total,")


def test_a_report_asked_wrongly_says_how_to_ask(demo: Deployed) -> None:
    with demo.db.engine.connect() as conn:
        with pytest.raises(reports.ReportError, match="report by"):
            reports.report(conn, "staging", "colour", Period.last(7))  # type: ignore[arg-type]
        with pytest.raises(reports.ReportError, match="filters"):
            reports.report(conn, "staging", "offer", Period.last(7), {"colour": "red"})
        with pytest.raises(reports.ReportError, match="at most 2 days"):
            reports.report(conn, "staging", "hour", Period.last(7))
    with pytest.raises(reports.ReportError, match="YYYY-MM-DD"):
        Period.parse("yesterday", None)
    for since, until in ((None, "0001-01-01"), (None, "9999-12-31")):
        with pytest.raises(reports.ReportError):
            Period.parse(since, until)
    with pytest.raises(reports.ReportError, match="after it ends"):
        Period.parse("2026-12-02", "2026-12-01")
    assert Period.parse("2026-12-01", "2026-12-01").end == dt.date(2026, 12, 2)


def test_best_and_worst_never_name_the_same_offer_and_csv_holds_no_formula() -> None:
    rows = [reports.Row(f"O{i}", trials=100, accepted=10 * i) for i in range(1, 4)]
    for row in rows:
        reports._finish(row)
    best, worst = reports.ranked(rows)
    assert not {r.key for r in best} & {r.key for r in worst}
    rep = reports.Report(
        "staging",
        "offer",
        Period.last(1),
        {},
        [reports.Row("=HYPERLINK(1)")],
        reports.Row("total"),
        [],
        [],
    )
    assert "\n'=HYPERLINK(1)," in reports.as_csv(rep)
