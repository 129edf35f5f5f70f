"""The simulation report: every chart is on the page, user text is escaped, and the page
renders its charts in a real browser with no network (plotly.js is embedded)."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from overture.batch.report import figures_json, render_report, write_report

CHARTS = ["chart-offers", "chart-categories", "chart-segments", "chart-funnel", "chart-scores"]
EVIL = "Bonus <script>alert(1)</script>"


def _funnel(population: int, *steps: tuple[str, int]) -> list[dict[str, Any]]:
    funnel: list[dict[str, Any]] = [{"step": "population", "removed": 0, "remaining": population}]
    for step, removed in steps:
        funnel.append(
            {"step": step, "removed": removed, "remaining": funnel[-1]["remaining"] - removed}
        )
    return funnel


def _score(count: int, low: float, high: float) -> dict[str, Any]:
    step = (high - low) / 4
    return {
        "count": count,
        "min": low,
        "p25": low + step,
        "median": low + 2 * step,
        "p75": low + 3 * step,
        "max": high,
        "histogram": {
            "edges": [low + i * step for i in range(5)],
            "counts": [count // 4, count // 4, count // 4, count - 3 * (count // 4)],
        },
    }


def sample_figures() -> dict[str, Any]:
    return {
        "simulation": True,
        "environment": "staging",
        "deployment": 3,
        "placement": "email_newsletter_slot",
        "audience": "customer",
        "n": 3,
        "at": "2026-11-23T09:00:00",
        "engine": "duckdb",
        "recipients": 10000,
        "recipients_with_offers": 9420,
        "propositions": 12234,
        "elapsed_seconds": 1.84,
        "ranks": [
            {"rank": 1, "propositions": 9420},
            {"rank": 2, "propositions": 2500},
            {"rank": 3, "propositions": 314},
        ],
        "offers": [
            {
                "offer": "LOAN-EV",
                "name": "Green car loan",
                "category": "loans",
                "fallback": False,
                "propositions": 1234,
                "by_rank": {"1": 1000, "2": 200, "3": 34},
                "funnel": _funnel(
                    10000,
                    ("category loans", 2000),
                    ("eligibility", 3000),
                    ("score", 100),
                    ("filter policy no-minors", 10),
                    ("suppression after-reject", 40),
                    ("capping weekly-loans", 600),
                    ("inventory ev-stock", 1000),
                    ("outranked", 2016),
                ),
                "why_none": None,
                "score": _score(4900, 1.0, 90.0),
            },
            {
                "offer": "CARD-GOLD",
                "name": EVIL,
                "category": "cards",
                "fallback": False,
                "propositions": 8000,
                "by_rank": {"1": 7000, "2": 1000},
                "funnel": _funnel(
                    10000,
                    ("category cards", 500),
                    ("eligibility", 1000),
                    ("score", 0),
                    ("filter policy no-minors", 20),
                    ("filter policy kyc-done", 80),
                    ("outranked", 400),
                ),
                "score": _score(8500, 5.0, 60.0),
            },
            {
                "offer": "SAVE-PLUS",
                "name": "Savings plus",
                "category": "savings",
                "fallback": True,
                "propositions": 3000,
                "by_rank": {"1": 1420, "2": 1300, "3": 280},
                "funnel": _funnel(10000, ("eligibility", 0), ("outranked", 7000)),
            },
            {
                "offer": "LOAN-YACHT",
                "name": "Yacht loan",
                "category": "loans",
                "fallback": False,
                "propositions": 0,
                "by_rank": {},
                "funnel": _funnel(10000, ("category loans", 2000), ("eligibility", 8000)),
                "why_none": "eligibility removed every recipient (offer.min_income > income)",
                "score": None,
            },
        ],
        "categories": [
            {"category": "loans", "propositions": 1234},
            {"category": "cards", "propositions": 8000},
            {"category": "savings", "propositions": 3000},
        ],
        "segments": [
            {"segment": "young", "recipients": 3000, "propositions": 4000},
            {"segment": "<b>vip</b>", "recipients": 500, "propositions": 1400},
        ],
    }


def test_the_page_has_every_chart_and_escapes_user_text() -> None:
    page = render_report(sample_figures())

    for chart in CHARTS:
        assert f'class="overture-chart" id="{chart}"' in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page and "<b>vip</b>" not in page
    assert "simulation: nothing was recorded" in page
    assert "offer.min_income &gt; income" in page  # the yacht loan's reason
    assert (
        "<small>weekly-loans</small>" in page and "<small>no-minors 20, kyc-done 80</small>" in page
    )
    assert 'src="http' not in page  # nothing loaded from the network


def test_optional_figures_may_be_missing() -> None:
    figures = sample_figures()
    del figures["segments"]
    for offer in figures["offers"]:
        offer.pop("score", None)
        offer.pop("why_none", None)
    figures["simulation"] = False

    page = render_report(figures)

    assert 'id="chart-segments"' not in page and 'id="chart-scores"' not in page
    assert 'id="chart-funnel"' in page
    assert "eligibility removed every remaining recipient" in page  # derived from the funnel
    assert "nothing was recorded" not in page


def test_figures_json_round_trips_and_is_stable() -> None:
    figures = sample_figures()

    text = figures_json(figures)

    assert json.loads(text) == figures
    assert text == figures_json(json.loads(text))
    assert '\n  "at": "2026-11-23T09:00:00",\n' in text


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class _Charts(HTMLParser):
    """Per `overture-chart` div: whether plotly drew an SVG in it, and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.svg: dict[str, bool] = {}
        self.text: dict[str, list[str]] = {}
        self._chart: str | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if self._chart is not None:
            self._depth += tag == "div"
            self.svg[self._chart] |= "main-svg" in classes
        elif tag == "div" and "overture-chart" in classes:
            self._chart, self._depth = dict(attrs).get("id") or "?", 1
            self.svg[self._chart], self.text[self._chart] = False, []

    def handle_endtag(self, tag: str) -> None:
        if self._chart is not None and tag == "div":
            self._depth -= 1
            if self._depth == 0:
                self._chart = None

    def handle_data(self, data: str) -> None:
        if self._chart is not None:
            self.text[self._chart].append(data)


def test_the_charts_render_in_headless_chromium_offline(tmp_path: Path) -> None:
    """Only plotly.js draws `main-svg`: without the embedded bundle (or with a CDN link, as
    host resolution is off) the chart divs stay empty and this fails."""
    chromium = _chromium()
    if chromium is None:
        pytest.skip(
            "chromium is not installed: sudo apt-get install chromium (.ci/run installs it)"
        )
    page = write_report(sample_figures(), tmp_path / "report.html")

    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--host-resolver-rules=MAP * ~NOTFOUND",  # no network: the page must not need it
            "--virtual-time-budget=10000",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    charts = _Charts()
    charts.feed(result.stdout)

    assert sorted(charts.svg) == sorted(CHARTS)
    assert all(charts.svg.values()), f"charts plotly did not draw: {charts.svg}"
    offers = "".join(charts.text["chart-offers"])
    assert EVIL in offers  # shown as typed: plotly decoded the entities, ran no markup
    assert "&lt;" not in offers
    assert "<script>alert(1)" not in result.stdout.split("</head>", 1)[1]
