"""The console's pages as a browser without JavaScript uses them: the whole workflow, live
checking, previews, conflicts, hostile text, administration."""

from __future__ import annotations

import re
import time

from sqlalchemy import select

from overture.design import offers
from overture.store import Database
from overture.store.models import SimulationRun
from tests.console.client import add_operators, console
from tests.deployed import Deployed

OFFER = {
    "code": "CC-WINTER",
    "name": "Winter card",
    "category": "credit_cards",
    "eligibility": "age >= 18 and coalesce(income, 0) > 20000",
    "weights": "- value: 3",
    "placements": "web_account_sidebar:",
    "content": "title: 'Hello {{ profile.first_name }}'\nbody: Cold\ncta_url: /cards/winter",
}


def test_an_offer_goes_from_a_form_to_production_and_back(demo: Deployed) -> None:
    add_operators(demo.db)
    manager = console(demo.db, "offer_manager")

    # a rule with a mistake: refused, the error beside the field at its column
    wrong = manager.post("offers", {**OFFER, "eligibility": "agee >= 18"})
    assert wrong.status_code == 422
    assert re.search(r"line 1, column 1: .*agee", wrong.text)
    assert "did you mean" in wrong.text and "age" in wrong.text
    with demo.db.session() as s:
        assert offers.list_offers(s, q="CC-WINTER")[1] == 0

    made = manager.post("offers", OFFER)
    assert made.status_code == 303, made.text
    assert made.headers["location"].startswith("/console/offers/CC-WINTER")
    page = manager.get("offers/CC-WINTER").text
    assert "Winter card" in page and "draft" in page

    # the preview renders the content for a stored profile
    preview = manager.post(
        "offers/-/preview",
        {**OFFER, "_key": "CC-WINTER", "_preview_profile_id": "C0000001"},
        headers={"accept": "application/json"},
    )
    content = preview.json()["preview"]["web_account_sidebar"]
    assert content["title"].startswith("Hello ") and content["title"] != "Hello "
    assert (
        manager.post("offers/CC-WINTER/submit", {"version": _version(demo.db)}).status_code == 303
    )

    approver = console(demo.db, "approver")
    waiting = approver.get("approvals").text
    assert "CC-WINTER" in waiting and "never approved" in waiting
    approved = approver.post(
        "offers/CC-WINTER/approve", {"version": _version(demo.db), "back": "approvals"}
    )
    assert approved.status_code == 303

    deployer = console(demo.db, "deployer")
    plan = deployer.get("deployments/staging").text
    assert "CC-WINTER" in plan  # the plan lists the new offer before deploying
    assert deployer.post("deployments/staging/deploy", {"comment": "winter"}).status_code == 303
    decided = deployer.get(
        "decide",
        params={
            "go": "1",
            "env": "staging",
            "placement": "web_account_sidebar",
            "profile": '{"age": 40, "income": 50000, "first_name": "Eve"}',
        },
    )
    assert decided.status_code == 200, decided.text
    assert "Every candidate" in decided.text and "CC-WINTER" in decided.text

    # production takes only what ran on staging; then a rollback restores number 1
    production = deployer.get("deployments/production").text
    assert "may be deployed here" in production
    assert deployer.post("deployments/production/deploy", {"comment": "go"}).status_code == 303
    assert deployer.post("deployments/production/deploy", {}).status_code == 303
    rolled = deployer.post("deployments/production/rollback", {"to": "1"})
    assert rolled.status_code == 303
    assert "as number 3" in deployer.client.get(rolled.headers["location"]).text


def _text(html: str) -> str:
    """What a page says, without its tags."""
    return re.sub(r"<[^>]+>", "", html)


def _version(db: Database, code: str = "CC-WINTER") -> str:
    with db.session() as s:
        return str(offers.get_offer(s, code).version)


def test_a_second_browser_saving_an_old_version_sees_the_difference_and_overwrites_nothing(
    demo: Deployed,
) -> None:
    add_operators(demo.db)
    first, second = console(demo.db, "offer_manager"), console(demo.db, "administrator")
    assert first.post("offers", OFFER).status_code == 303
    version = _version(demo.db)
    assert (
        first.post(
            "offers/CC-WINTER", {**OFFER, "name": "Winter card, first", "version": version}
        ).status_code
        == 303
    )
    stale = second.post(
        "offers/CC-WINTER", {**OFFER, "name": "Winter card, second", "version": version}
    )
    assert stale.status_code == 409
    assert "Someone else saved this offer" in stale.text
    shown = _text(stale.text)
    assert "Winter card, first" in shown and "Winter card, second" in shown
    with demo.db.session() as s:
        assert offers.get_offer(s, "CC-WINTER").spec.name == "Winter card, first"
    # saving again from that page (it carries the current version) replaces it knowingly
    current = re.search(r'name="version" value="(\d+)"', stale.text)
    assert current
    again = second.post(
        "offers/CC-WINTER", {**OFFER, "name": "Winter card, second", "version": current[1]}
    )
    assert again.status_code == 303


def test_hostile_text_is_shown_as_text(demo: Deployed) -> None:
    add_operators(demo.db)
    c = console(demo.db, "administrator")
    script = "<script>alert(1)</script>"
    hostile = {
        **OFFER,
        "name": script,
        "description": f'"><img src=x onerror=alert(1)>{script}',
        "content": f"title: '{script}'\nbody: b\ncta_url: /x",
    }
    assert c.post("offers", hostile).status_code == 303
    for path in ("offers/CC-WINTER", "catalog", "audit"):
        text = c.get(path).text
        assert script not in text, path
        assert "<img src=x onerror" not in text, path  # the tag is text, not an element
        assert "&lt;script&gt;" in text, path
    bad_rule = c.post("offers", {**OFFER, "code": "X2", "eligibility": f"'{script}' in {script}"})
    assert bad_rule.status_code == 422 and script not in bad_rule.text


def test_live_checking_answers_every_problem_by_field(demo: Deployed) -> None:
    add_operators(demo.db)
    c = console(demo.db, "offer_manager")
    answer = c.post(
        "check/offers",
        {**OFFER, "eligibility": "age >= ", "value": "lots", "category": "nowhere"},
        headers={"accept": "application/json"},
    ).json()
    errors = answer["errors"]
    assert errors["value"] == ["'lots' is not a number"]
    answer = c.post(
        "check/offers",
        {**OFFER, "eligibility": "age >= 18 and segmnt.young_adults"},
        headers={"accept": "application/json"},
    ).json()
    assert any("line 1, column" in e for e in answer["errors"]["eligibility"])
    fine = c.post("check/offers", OFFER, headers={"accept": "application/json"}).json()
    assert fine["errors"] == {}


def test_every_object_kind_is_created_edited_and_deleted_in_forms(demo: Deployed) -> None:
    add_operators(demo.db)
    c = console(demo.db, "administrator")
    made = c.post(
        "objects/policies", {"name": "cap2", "kind": "capping", "limit": "2", "window": "7d"}
    )
    assert made.status_code == 303, made.text
    page = c.get("objects/policies/cap2").text
    assert 'value="7d"' in page
    version = re.search(r'name="version" value="(\d+)"', page)
    assert version
    edited = c.post(
        "objects/policies/cap2",
        {"name": "cap2", "kind": "capping", "limit": "3", "window": "1w", "version": version[1]},
    )
    assert edited.status_code == 303
    assert 'value="3"' in c.get("objects/policies/cap2").text
    # deleting what is still referenced says by what, and deletes nothing
    segment = c.get("objects/segments/young_adults").text
    seg_version = re.search(r'name="version" value="(\d+)"', segment)
    assert seg_version
    refused = c.post("objects/segments/young_adults/delete", {"version": seg_version[1]})
    assert refused.status_code == 422
    assert "young_adults" in refused.text and "was not deleted" in refused.text
    page = c.get("objects/policies/cap2").text
    version = re.search(r'name="version" value="(\d+)"', page)
    assert version
    assert c.post("objects/policies/cap2/delete", {"version": version[1]}).status_code == 303
    assert c.get("objects/policies/cap2").status_code == 404
    # a placement's page shows what a touchpoint sends
    placement = c.get("objects/placements/web_home_hero").text
    assert "/v1/decisions" in placement and "RestServlet" in placement


def test_administrators_add_operators_and_keys_shown_once(database: Database) -> None:
    add_operators(database)
    c = console(database, "administrator")
    added = c.post("operators", {"name": "olga", "roles": ["offer_manager", "approver"]})
    assert added.status_code == 200
    password = re.search(r'<code id="new-password">([^<]+)</code>', added.text)
    assert password
    olga = console(database)
    assert olga.login("olga", password[1]).status_code == 303
    assert 'id="new-password"' not in c.get("operators").text  # shown once, never again
    key = c.post("api-keys", {"environment": "staging", "name": "web"})
    shown = re.search(r'<code id="new-key">(ovk_[^<]+)</code>', key.text)
    assert shown
    assert shown[1] not in c.get("api-keys").text  # shown once
    # disabling an operator ends their console sessions
    assert c.post("operators/olga", {"change": "disable"}).status_code == 200
    assert olga.get("", follow_redirects=False).status_code == 303
    audit = c.get("audit", params={"action": "operators.", "key": "olga"}).text
    assert "operators.create" in audit and "operators.update" in audit


def test_a_simulation_runs_from_the_console_and_shows_its_report(demo: Deployed) -> None:
    add_operators(demo.db)
    c = console(demo.db, "offer_manager")
    launched = c.post(
        "simulations", {"env": "staging", "placement": "web_home_hero", "limit": "50"}
    )
    assert launched.status_code == 303, launched.text
    run_id = int(launched.headers["location"].split("/")[-1].split("?")[0])
    deadline = time.monotonic() + 60
    status, error = "", ""
    while time.monotonic() < deadline:
        with demo.db.session() as s:
            run = s.get(SimulationRun, run_id)
            assert run is not None
            status, error = run.status, run.error
        if status in ("done", "failed"):
            break
        time.sleep(0.2)
    assert status == "done", error
    page = c.get(f"simulations/{run_id}").text
    assert "<iframe" in page
    report = c.get(f"simulations/{run_id}/report")
    assert report.status_code == 200 and "plotly" in report.text.lower()
    with demo.db.session() as s:
        assert [r.id for r in s.scalars(select(SimulationRun))] == [run_id]


def test_revisions_compare_any_two(demo: Deployed) -> None:
    add_operators(demo.db)
    c = console(demo.db, "administrator")
    version = _version(demo.db, "CC-GOLD")
    assert (
        c.post(
            "offers/CC-GOLD",
            {**_fields(demo.db, "CC-GOLD"), "name": "Gold card, new", "version": version},
        ).status_code
        == 303
    )
    page = c.get("offers/CC-GOLD/revisions", params={"a": "1", "b": "2"}).text
    assert "Gold card, new" in _text(page) and "revision 1 (approved)" in page


def _fields(db: Database, code: str) -> dict[str, str]:
    from overture.console import forms
    from overture.design.kinds import OFFERS

    with db.session() as s:
        return forms.values_of(OFFERS, offers.get_offer(s, code).spec)


def test_every_page_answers_for_an_administrator(demo: Deployed) -> None:
    add_operators(demo.db)
    c = console(demo.db, "administrator")
    paths = [
        "",
        "catalog",
        "catalog?category=cards&status=approved&valid=now",
        "offers/-/new",
        "offers/CC-GOLD",
        "offers/CC-GOLD/revisions",
        "approvals",
        "deployments",
        "deployments/staging",
        "deployments/production",
        "decide",
        "simulations",
        "operators",
        "api-keys",
        "audit",
        "patterns",
        "password",
        "static/console.css",
        "static/console.js",
        "static/plotly.min.js",
    ] + [
        f"objects/{k}"
        for k in (
            "audiences",
            "channels",
            "zones",
            "placements",
            "categories",
            "segments",
            "treatment-rules",
            "policies",
        )
    ]
    for path in paths:
        response = c.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        if path.startswith("static"):
            continue
        assert "content-security-policy" in response.headers
        assert "http://" not in re.sub(r'(href|src|action)="/', "", response.text).split("<main")[0]


def test_drafts_are_submitted_and_approved_in_bulk(database: Database) -> None:
    from overture.design import transfer
    from tests.design.helpers import ADMIN, demo_files

    with database.session() as s:
        transfer.import_catalog(s, ADMIN, demo_files())
    add_operators(database)
    manager = console(database, "offer_manager")
    catalog = manager.get("catalog").text
    shown = re.findall(r'name="offer" value="([^"]+)"', catalog)
    assert len(shown) == 36
    stale = shown[0].rpartition(":")[0] + ":999"  # a version the page did not show
    done = manager.post("offers/-/bulk/submit", {"offer": [stale, *shown[1:]], "back": "catalog"})
    assert done.status_code == 303
    said = manager.client.get(done.headers["location"]).text
    assert "35 offer(s) submitted" in said and "1 not" in said
    approver = console(database, "approver")
    waiting = re.findall(r'name="offer" value="([^"]+)"', approver.get("approvals").text)
    assert len(set(waiting)) == 35
    assert (
        approver.post("offers/-/bulk/approve", {"offer": sorted(set(waiting))}).status_code == 303
    )
    with database.session() as s:
        statuses = {o.extra["status"] for o in offers.list_offers(s, limit=100)[0]}
    assert statuses == {"approved", "draft"}
    assert manager.post("offers/-/bulk/approve", {"offer": shown}).status_code == 403


def test_the_catalog_settings_are_edited_in_a_form(demo: Deployed) -> None:
    add_operators(demo.db)
    c = console(demo.db, "administrator")
    page = c.get("settings").text
    assert "visit_count: int" in page  # the demo's context fields
    version = re.search(r'name="version" value="(\d+)"', page)
    context = re.search(r'name="context"[^>]*>([^<]*)</textarea>', page)
    assert version and context
    saved = c.post(
        "settings",
        {"version": version[1], "context": context[1] + "\nloyalty_tier: string", "name": "bank"},
    )
    assert saved.status_code == 303, saved.text
    assert "loyalty_tier: string" in c.get("settings").text
    wrong = c.post("settings", {"version": "0", "context": "device: colour"})
    assert wrong.status_code in (409, 422)
    assert console(demo.db, "offer_manager").post("settings", {"version": "1"}).status_code == 403
