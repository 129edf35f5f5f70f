"""The simulation report: every chart is on the page, user text is escaped, and the page
renders its charts in a real browser with no network (plotly.js is embedded)."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from overture.batch.report import figures_json, offers_nobody_gets, render_report, write_report
from overture.batch.run import BatchSpec, run_batch
from overture.catalog import load_catalog
from overture.demo import CATALOG_PATH, profiles
from overture.engine import build_plan
from tests.demo import DEMO_AS_OF

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


def _chart(page: str, chart: str) -> dict[str, Any]:
    """A chart's figure as the page hands it to plotly."""
    found = re.search(rf"Plotly\.newPlot\({json.dumps(chart)}, (.*?)\);</script>", page, re.S)
    assert found, f"no {chart} on the page"
    figure: dict[str, Any] = json.loads(found.group(1))
    return figure


def test_the_figures_are_the_output_tables_fallbacks_included(tmp_path: Path) -> None:
    """The demo's newsletter slot fills free slots with fallbacks (EDU-FRAUD, EDU-BUDGETING),
    which are ranked candidates as well: each (offer, role) entry of the figures holds the
    propositions and ranks the output table gives that offer in that role, the chart draws
    them under labels of their own, and an offer given in either role is not one that
    nobody gets."""
    path = tmp_path / "people.parquet"
    pq.write_table(profiles.generate(3_000, as_of=DEMO_AS_OF), path)
    plan = build_plan(load_catalog(CATALOG_PATH))
    spec = BatchSpec(
        placement="email_newsletter_slot",
        n=3,
        population=str(path),
        simulate=True,
        now=dt.datetime.combine(DEMO_AS_OF, dt.time(9)),
    )
    result = run_batch(spec, plan)
    figures, engine = result.figures, result.allocation.engine
    table: dict[tuple[str, bool], dict[str, int]] = {}
    for offer, fallback, rank, n in engine.rows(
        f"SELECT offer, fallback, rank, count(*) FROM {result.output.table} GROUP BY ALL"
    ):
        table.setdefault((offer, bool(fallback)), {})[str(rank)] = int(n)
    per_offer = Counter[str]()
    for (offer, _), ranks in table.items():
        per_offer[offer] += sum(ranks.values())
    ranked_too = {o["offer"] for o in figures["offers"] if not o["fallback"]}
    # what the test is about: fallbacks proposed, of offers that are ranked candidates too
    assert {o for o, fallback in table if fallback} & ranked_too

    entries = {(o["offer"], o["fallback"]): o for o in figures["offers"]}
    assert len(entries) == len(figures["offers"])  # one entry per offer and role
    assert set(table) <= set(entries)
    for key, entry in entries.items():
        ranks = table.get(key, {})
        assert entry["by_rank"] == ranks, key
        assert entry["propositions"] == sum(ranks.values()), key
        assert entry["funnel"][-1]["remaining"] == entry["propositions"], key
        assert (entry["why_none"] is None) == (entry["propositions"] > 0), key
    fallbacks = Counter[str]()
    for entry in figures["offers"]:
        fallbacks[entry["offer"]] += entry["propositions"] if entry["fallback"] else 0
    assert fallbacks == Counter(
        {o: sum(r.values()) for (o, fallback), r in table.items() if fallback}
    )
    assert figures["propositions"] == sum(per_offer.values())
    nobody = {offer["offer"] for offer, _ in offers_nobody_gets(figures["offers"])}
    assert nobody == {code for code, _ in entries} - set(per_offer)

    page = render_report(figures)
    bars = _chart(page, "chart-offers")["data"]
    drawn = Counter[str]()
    for bar in bars:
        for label, n in zip(bar["y"], bar["x"], strict=True):
            drawn[label] += n
    shown = [o for o in figures["offers"] if o["propositions"] > 0]
    labels = {
        f"{o['name']} ({o['offer']}{', fallback' if o['fallback'] else ''})": o for o in shown
    }
    assert len(labels) == len(shown)  # an offer's two roles are two bars
    assert drawn == {label: o["propositions"] for label, o in labels.items()}
    section = page.split("<h2>Offers nobody gets", 1)[1].split("<h2>", 1)[0]
    listed = set(re.findall(r"<small>([^<,]+)", section))
    assert listed == nobody


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
