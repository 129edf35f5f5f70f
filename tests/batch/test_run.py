"""A batch on a deployed environment: its propositions are in the history, runtime capping
and inventory count them, a held inventory is never overspent, an interrupted batch leaves
nothing behind, and a simulation records nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select, update

from overture.batch.run import BatchError, BatchSpec, run_batch
from overture.demo import profiles
from overture.history import rollups
from overture.history.deployed import load_live
from overture.store.history import InventoryCounterRow, ProfileVersionRow, PropositionRow
from tests.demo import DEMO_AS_OF
from tests.deployed import Deployed

PEOPLE = 2_000


@pytest.fixture
def population(tmp_path: Path) -> str:
    path = tmp_path / "people.parquet"
    pq.write_table(profiles.generate(PEOPLE, as_of=DEMO_AS_OF), path)
    return str(path)


def _count(deployed: Deployed, model: type, *where: Any) -> int:
    with deployed.db.session() as s:
        query: Any = select(func.count()).select_from(model).where(*where)
        return int(s.scalar(query) or 0)


@pytest.mark.slow
def test_recorded_propositions_count_in_real_time(demo: Deployed, population: str) -> None:
    live = load_live(demo.db, "staging")
    spec = BatchSpec(placement="web_home_hero", n=1, population=population)
    first = run_batch(spec, live.plan, live=live, db=demo.db)
    assert first.recorded == _count(demo, PropositionRow) > PEOPLE // 2
    codes = first.allocation.engine.rows(f"SELECT tracking_code FROM {first.output.table}")
    with demo.db.session() as s:
        stored = set(s.scalars(select(PropositionRow.tracking_code)))
    assert stored == {c for (c,) in codes}
    assert _count(demo, ProfileVersionRow) == first.recorded  # one bump per recipient
    with demo.db.engine.connect() as conn:  # the reports' rollup counts them, exactly
        assert rollups.maintained(conn) == rollups.from_history(conn)
        assert sum(r[7] for r in rollups.maintained(conn) if r[6] == "*") == first.recorded
    given = dict(
        first.allocation.engine.rows(
            f"SELECT recipient, offer FROM {first.output.table} WHERE rank = 1"
        )
    )
    # the demo caps an offer at 3 presentations a week on the web: two more batches, and
    # real time no longer proposes it to those who got it three times
    for _ in range(2):
        run_batch(spec, live.plan, live=live, db=demo.db)
    again = run_batch(spec, live.plan, live=live, db=demo.db)
    fourth = dict(
        again.allocation.engine.rows(
            f"SELECT recipient, offer FROM {again.output.table} WHERE rank = 1"
        )
    )
    thrice = [r for r, o in given.items() if fourth.get(r) != o]
    assert thrice  # the batch itself moved on after three
    with demo.client() as client:
        for customer in thrice[:5]:
            body = client.post(
                "/v1/decisions",
                json={"profile_id": customer, "placements": [{"placement": "web_home_hero"}]},
            ).json()
            offers = [o["offer"] for o in body["placements"][0]["offers"]]
            assert given[customer] not in offers, (customer, given[customer], body)


def test_a_batch_at_a_whole_second_counts_to_the_end_of_the_window(
    demo: Deployed,
    population: str,
) -> None:
    """A batch decided at 12:00:00 exactly is read, a week later to the microsecond, by the
    runtime's and the batch's reads of the history alike (its time is stored as every
    writer stores one)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from overture.history.counted import every_profile
    from overture.history.recorder import Recorder
    from overture.history.sql_ledger import SqlLedger

    live = load_live(demo.db, "staging")
    at = dt.datetime(2030, 1, 7, 12)
    spec = BatchSpec(placement="web_home_hero", n=1, population=population, now=at)
    result = run_batch(spec, live.plan, live=live, db=demo.db)
    assert live.lookback.presented == dt.timedelta(days=30)  # the demo's longest cap
    end = at + dt.timedelta(days=30)  # the window's first instant is the batch's
    query = every_profile(live.lookback, "staging", end, audience="customer")
    assert query is not None
    with demo.db.engine.connect() as conn:
        assert len(conn.execute(query).all()) == result.recorded
    someone = result.allocation.rows()[0][0]

    async def read() -> int:
        recorder, readers = Recorder(demo.db), ThreadPoolExecutor(1)
        ledger = SqlLedger(demo.db, recorder, readers)
        try:
            history = await ledger.load(live, "customer", someone, end)
        finally:
            await recorder.aclose()
            await ledger.close()
            readers.shutdown()
        return len(history.items)

    assert asyncio.run(read()) == 1


def test_a_batch_never_overspends_an_inventory(demo: Deployed, population: str) -> None:
    """20 Platinum cards left today: the batch gives at most 20, and the counter ends at
    exactly what was given on top of what was used."""
    live = load_live(demo.db, "staging")
    today = dt.datetime.now(dt.UTC).date().isoformat()
    with demo.db.session() as s, s.begin():
        s.add(
            InventoryCounterRow(
                environment="staging", offer_code="CC-PLATINUM", period=today, used=480
            )
        )
    spec = BatchSpec(placement="cc_next_best_action", population=population)
    result = run_batch(spec, live.plan, live=live, db=demo.db)
    platinum = _count(demo, PropositionRow, PropositionRow.offer_code == "CC-PLATINUM")
    assert 0 < platinum <= 20
    with demo.db.session() as s:
        used = s.scalar(
            select(InventoryCounterRow.used).where(InventoryCounterRow.offer_code == "CC-PLATINUM")
        )
    assert used == 480 + platinum
    assert result.allocation.refusals > 0  # more wanted it than there were


def test_an_interrupted_batch_records_nothing_and_gives_inventory_back(
    demo: Deployed,
    population: str,
) -> None:
    live = load_live(demo.db, "staging")
    today = dt.datetime.now(dt.UTC).date().isoformat()
    with demo.db.session() as s, s.begin():
        s.add(
            InventoryCounterRow(
                environment="staging", offer_code="CC-PLATINUM", period=today, used=100
            )
        )

    def stop(what: str, _done: float) -> None:
        if what == "rendering content":
            with demo.db.session() as s:  # the batch holds the rest while it runs
                held = s.scalar(select(InventoryCounterRow.used))
            assert held == 500
            raise KeyboardInterrupt

    spec = BatchSpec(placement="cc_next_best_action", population=population)
    with pytest.raises(KeyboardInterrupt):
        run_batch(spec, live.plan, live=live, db=demo.db, progress=stop)
    assert _count(demo, PropositionRow) == 0
    with demo.db.session() as s:
        assert s.scalar(select(InventoryCounterRow.used)) == 100


def test_a_simulation_records_nothing(demo: Deployed, population: str) -> None:
    live = load_live(demo.db, "staging")
    with demo.db.session() as s, s.begin():
        s.execute(update(InventoryCounterRow).values(used=0))
    spec = BatchSpec(placement="email_newsletter_slot", n=3, population=population, simulate=True)
    result = run_batch(spec, live.plan, live=live, db=demo.db, meta={"environment": "staging"})
    assert result.recorded == 0 and _count(demo, PropositionRow) == 0
    figures = result.figures
    assert figures["simulation"] is True and figures["environment"] == "staging"
    assert figures["recipients"] == PEOPLE
    assert figures["propositions"] == sum(o["propositions"] for o in figures["offers"]) > 0
    for offer in figures["offers"]:  # every recipient is accounted for at one step
        steps = offer["funnel"]
        assert steps[0]["remaining"] == PEOPLE
        assert steps[-1]["remaining"] == offer["propositions"]
        removed = sum(s["removed"] for s in steps)
        assert removed == PEOPLE - offer["propositions"], offer
        assert (offer["why_none"] is None) == (offer["propositions"] > 0)


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"name": ["a"]}, "no column 'customer_id'"),
        (
            {"customer_id": ["C1", "C1", "C2"]},
            "1 duplicate customer_id(s) in the population, e.g. C1",
        ),
        ({"customer_id": ["C1", None]}, "1 row(s) of the population have no customer_id"),
    ],
)
def test_a_bad_population_says_what_is_wrong(
    tmp_path: Path, columns: dict[str, list[object]], message: str
) -> None:
    import pyarrow as pa

    from overture.catalog import load_catalog
    from overture.demo import CATALOG_PATH
    from overture.engine import build_plan

    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table(columns), path)
    plan = build_plan(load_catalog(CATALOG_PATH))
    spec = BatchSpec(placement="web_home_hero", population=str(path), simulate=True)
    with pytest.raises(BatchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_batch(spec, plan)


def test_a_missing_field_is_null_not_an_error(tmp_path: Path) -> None:
    """A population with only the ids: rules reading absent fields are not true."""
    from overture.catalog import load_catalog
    from overture.demo import CATALOG_PATH
    from overture.engine import build_plan

    path = tmp_path / "ids.csv"
    path.write_text("customer_id\nC1\nC2\n")
    plan = build_plan(load_catalog(CATALOG_PATH))
    spec = BatchSpec(placement="web_home_hero", population=str(path), simulate=True)
    result = run_batch(spec, plan)
    assert result.figures["recipients"] == 2


@pytest.mark.slow
def test_the_design_api_simulates_over_the_stored_profiles(demo: Deployed) -> None:
    """Offer and delivery managers may; the answer is the figures or the HTML report;
    nothing is recorded; a viewer may not."""
    from tests.design.api import make_api

    api = make_api(demo.db)
    path = "/v1/design/environments/staging/simulations"
    body = {"placement": "email_newsletter_slot", "n": 2, "limit": 200}
    answer = api.call("POST", path, "delivery_manager", json=body)
    assert answer.status_code == 200, answer.text
    figures = answer.json()
    assert figures["recipients"] == 200 and figures["environment"] == "staging"
    assert figures["requested_by"] == "delivery-manager"
    # a time with an offset is that instant (decided at 12:00 UTC)
    local = {**body, "at": "2030-01-07T14:00:00+02:00"}
    shifted = api.call("POST", path, "delivery_manager", json=local)
    assert shifted.status_code == 200 and shifted.json()["at"] == "2030-01-07T12:00:00"
    assert figures["propositions"] == sum(o["propositions"] for o in figures["offers"]) > 0
    page = api.call("POST", path, "offer_manager", json={**body, "format": "html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="chart-funnel"' in page.text
    assert api.call("POST", path, "viewer", json=body).status_code == 403
    wrong = api.call("POST", path, "offer_manager", json={**body, "placement": "nowhere"})
    assert wrong.status_code == 422 and "unknown placement 'nowhere'" in wrong.json()["detail"]
    missing = api.call("POST", "/v1/design/environments/nowhere/simulations", json=body)
    assert missing.status_code == 404
    assert _count(demo, PropositionRow) == 0


def test_csv_and_parquet_give_the_same_propositions(tmp_path: Path) -> None:
    """In CSV a list is its items joined with ';' (an empty cell: no items), as `overture
    demo-profiles` writes it; the demo's rules read `products`, so a wrong reading shows."""
    from overture.catalog import load_catalog
    from overture.demo import CATALOG_PATH
    from overture.engine import build_plan

    table = profiles.generate(3_000, as_of=DEMO_AS_OF)
    profiles.write(table, tmp_path / "p.csv")
    profiles.write(table, tmp_path / "p.parquet")
    now = dt.datetime(2026, 11, 23, 10)
    plan = build_plan(load_catalog(CATALOG_PATH), now)
    got = []
    for name in ("p.csv", "p.parquet"):
        spec = BatchSpec(
            placement="web_product_banner", population=str(tmp_path / name), simulate=True, now=now
        )
        result = run_batch(spec, plan)
        got.append(
            result.allocation.engine.rows(
                f"SELECT recipient, rank, offer, content_title FROM {result.output.table} "
                "ORDER BY recipient, rank"
            )
        )
    assert got[0] == got[1] and len(got[0]) > 3_000
