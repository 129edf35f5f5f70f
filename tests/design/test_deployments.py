"""Deployments: plan, deploy (staging before production), rollback, history."""

from __future__ import annotations

from typing import Any

import pytest

from overture.catalog import validate_catalog
from overture.design import access, deployments, offers, transfer
from overture.design.catalog import Actor, lock_catalog
from overture.design.errors import Conflict, Forbidden, Invalid
from overture.store import Database
from overture.store.models import AuditEntry, Deployment, OfferRow
from tests.design.helpers import ADMIN, APPROVER, DEPLOYER, MANAGER, approve_all, demo_files


@pytest.fixture
def approved(database: Database) -> Database:
    with database.session() as s:
        transfer.import_catalog(s, ADMIN, demo_files())
        approve_all(s)
    return database


def test_plan_then_deploy_staging_then_production(approved: Database) -> None:
    with approved.session() as s:
        plan = deployments.plan(s, "staging")
        assert plan["current"] is None and not plan["unchanged"]
        assert len(plan["changes"]["offers"]["added"]) == 36 and plan["errors"] == []
        first = deployments.deploy(s, DEPLOYER, "staging", "first release")
        assert (first.number, first.deployed_by, first.comment) == (1, "dan", "first release")
        assert deployments.plan(s, "staging")["unchanged"]
        assert deployments.plan(s, "production")["ran_on_required"] is True
        prod = deployments.deploy(s, DEPLOYER, "production", "go live")
        assert prod.number == 1 and prod.content_hash == first.content_hash
        assert offers.get_offer(s, "CC-GOLD").extra["live"] == {"staging": 1, "production": 1}


def test_production_needs_the_same_content_on_staging_unless_forced(approved: Database) -> None:
    with approved.session() as s:
        deployments.deploy(s, DEPLOYER, "staging")
        current = offers.get_offer(s, "EDU-FRAUD")
        changed = current.spec.model_copy(update={"value": 2.0})
        v = offers.update_offer(s, MANAGER, "EDU-FRAUD", changed, current.version).version
        offers.approve(s, APPROVER, "EDU-FRAUD", v)
        with pytest.raises(Conflict, match="has not run on staging"):
            deployments.deploy(s, DEPLOYER, "production")
        with pytest.raises(Forbidden, match="only an administrator"):
            deployments.deploy(s, DEPLOYER, "production", force=True)
        forced = deployments.deploy(s, ADMIN, "production", "hotfix", force=True)
        assert forced.forced
        actions = [e.action for e in s.query(AuditEntry).filter(AuditEntry.kind == "environments")]
        assert actions == ["deploy", "deploy.forced"]


def test_a_failed_deployment_changes_nothing(approved: Database) -> None:
    with approved.session() as s:
        current = offers.get_offer(s, "CC-GOLD")
        # The service keeps the head valid, so break an approved revision behind its back
        # (taking the catalog's lock first, as every catalog writer does).
        lock_catalog(s)
        row = s.query(OfferRow).filter(OfferRow.code == "CC-GOLD").one()
        assert row.approved is not None
        row.approved.body = row.approved.body.replace("credit_cards", "no_such_category")
        s.flush()
        with pytest.raises(Invalid) as caught:
            deployments.deploy(s, DEPLOYER, "staging")
        assert caught.value.extensions["errors"][0]["where"] == "offers[CC-GOLD].category"
        assert s.query(Deployment).count() == 0
        assert current.version == offers.get_offer(s, "CC-GOLD").version


def test_rollback_redeploys_an_earlier_number(approved: Database) -> None:
    with approved.session() as s:
        one = deployments.deploy(s, DEPLOYER, "staging")
        current = offers.get_offer(s, "EDU-FRAUD")
        v = offers.update_offer(
            s, MANAGER, "EDU-FRAUD", current.spec.model_copy(update={"value": 3.0}), current.version
        ).version
        offers.approve(s, APPROVER, "EDU-FRAUD", v)
        two = deployments.deploy(s, DEPLOYER, "staging")
        assert two.content_hash != one.content_hash
        three = deployments.rollback(s, DEPLOYER, "staging", to=1)
        assert (three.number, three.rollback_of, three.content_hash) == (3, 1, one.content_hash)
        history, total = deployments.history(s, "staging")
        assert total == 3 and [d.number for d in history] == [3, 2, 1]
        assert deployments.load_snapshot(three.snapshot) == deployments.load_snapshot(one.snapshot)


def test_new_environments_and_what_they_require(approved: Database) -> None:
    with approved.session() as s:
        access.create_environment(s, ADMIN, "eu-prod", "Europe", requires="production")
        with pytest.raises(Conflict, match="not run on production"):
            deployments.deploy(s, Actor("dan", frozenset({"deployer"})), "eu-prod")


def test_a_deployment_validates_before_taking_the_lock(
    approved: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catalog is read and validated before the catalog's lock is taken (on SQLite the
    lock is the file's write lock, which the runtime needs for every decision), and not
    again under it when nothing changed meanwhile."""
    validated: list[int] = []
    real = validate_catalog

    def counted(catalog: Any) -> Any:
        validated.append(len(catalog.offers))
        return real(catalog)

    monkeypatch.setattr(deployments, "validate_catalog", counted)
    with approved.session() as s:
        deployments.deploy(s, DEPLOYER, "staging")
    assert len(validated) == 1


def test_a_change_committed_while_a_deployment_validates_is_what_it_deploys(
    approved: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change that commits between the deployment's reading and its lock moves the
    catalog's counter: the deployment reads and validates again under the lock, and
    deploys the catalog as it is then."""
    real = deployments._prepare

    def then_a_change(session: Any) -> Any:
        prepared = real(session)
        with approved.session() as other:
            current = offers.get_offer(other, "EDU-FRAUD")
            changed = current.spec.model_copy(update={"value": 7.5})
            v = offers.update_offer(other, MANAGER, "EDU-FRAUD", changed, current.version).version
            offers.approve(other, APPROVER, "EDU-FRAUD", v)
        return prepared

    monkeypatch.setattr(deployments, "_prepare", then_a_change)
    with approved.session() as s:
        done = deployments.deploy(s, DEPLOYER, "staging")
        snapshot = deployments.load_snapshot(done.snapshot)
    assert next(o for o in snapshot.offers if o.code == "EDU-FRAUD").value == 7.5
