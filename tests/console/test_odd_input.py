"""Odd input answers with a page that says what is wrong, never a 500 (the test client
raises any server error), and changes nothing it should not."""

from __future__ import annotations

import re

from overture.design import offers
from tests.console.client import add_operators, console
from tests.deployed import Deployed

HUGE = "99999999999999999999"


def test_numbers_and_dates_out_of_any_range(demo: Deployed) -> None:
    add_operators(demo.db)
    c = console(demo.db, "administrator")
    for path in (
        f"audit?offset={HUGE}",
        "audit?until=9999-12-31&since=0001-01-01",
        "audit?since=yesterday",
        f"simulations/{HUGE}",
        f"simulations/{HUGE}/report",
        f"catalog?offset={HUGE}",
        f"objects/channels?offset={HUGE}",
        f"offers/CC-GOLD/revisions?a={HUGE}&b=-1",
    ):
        assert c.get(path).status_code in (200, 404), path
    assert c.post(f"api-keys/{HUGE}/revoke").status_code == 404
    assert c.post("deployments/staging/rollback", {"to": HUGE}).status_code == 404
    version = c.post("offers/CC-GOLD", {"code": "CC-GOLD", "name": "x", "version": HUGE})
    assert version.status_code in (409, 422)


def test_structures_too_deep_or_not_numbers(demo: Deployed) -> None:
    add_operators(demo.db)
    c = console(demo.db, "offer_manager")
    deep = "a: " + "[" * 3000 + "]" * 3000
    answer = c.post(
        "check/offers",
        {"code": "X", "name": "X", "category": "cards", "attributes": deep, "value": "nan"},
        headers={"accept": "application/json"},
    ).json()
    assert "nested too deep" in answer["errors"]["attributes"][0]
    assert "not a number" in answer["errors"]["value"][0]
    preview = c.post(
        "offers/-/preview",
        {"code": "X", "name": "X", "category": "cards", "_preview_profile": "[" * 5000},
        headers={"accept": "application/json"},
    )
    assert preview.status_code in (200, 422)


def test_saving_an_offer_deleted_meanwhile_says_so(demo: Deployed) -> None:
    add_operators(demo.db)
    c = console(demo.db, "offer_manager")
    with demo.db.session() as s:
        version = offers.get_offer(s, "SAV-EASY").version
    assert c.post("offers/SAV-EASY/delete", {"version": str(version)}).status_code == 303
    again = c.post("offers/SAV-EASY", {"code": "SAV-EASY", "name": "x", "version": str(version)})
    assert again.status_code == 404 and "no offer 'SAV-EASY'" in again.text.replace("&#39;", "'")
    assert c.post("offers/SAV-EASY/preview", {"code": "SAV-EASY"}).status_code == 404


def test_offers_and_objects_named_like_actions_open(demo: Deployed) -> None:
    add_operators(demo.db)
    c = console(demo.db, "administrator")
    for code in ("new", "preview", "bulk"):
        made = c.post(
            "offers",
            {"code": code, "name": f"An offer called {code}", "category": "cards"},
        )
        assert made.status_code == 303, made.text
        assert f"An offer called {code}" in c.get(f"offers/{code}").text
    assert c.post("objects/channels", {"name": "new"}).status_code == 303
    assert 'value="new"' in c.get("objects/channels/new").text


def test_lists_of_names_are_written_with_commas(demo: Deployed) -> None:
    add_operators(demo.db)
    c = console(demo.db, "offer_manager")
    made = c.post(
        "objects/treatment-rules",
        {"name": "students-cards", "segment": "young_adults", "offers": "ACC-STUDENT, CC-STUDENT"},
    )
    assert made.status_code == 303, made.text
    page = c.get("objects/treatment-rules/students-cards").text
    assert re.search(r'name="offers" value="ACC-STUDENT, CC-STUDENT"', page)


def test_a_post_without_a_session_is_not_read(demo: Deployed) -> None:
    stranger = console(demo.db)
    response = stranger.client.post(
        "/console/simulations",
        files={"population": ("p.csv", b"x" * 1000)},
        follow_redirects=False,
    )
    assert response.status_code == 303 and "/console/login" in response.headers["location"]
