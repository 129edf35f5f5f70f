"""The offer approval workflow: draft → pending → approved | rejected; only approved
revisions are deployable; editing an approved offer opens a pending revision."""

from __future__ import annotations

import pytest

from overture.design import offers, transfer
from overture.design.catalog import assemble
from overture.design.errors import Conflict, Stale
from overture.store import Database
from overture.store.models import AuditEntry
from tests.design.helpers import ADMIN, APPROVER, MANAGER, demo_files


@pytest.fixture
def demo(database: Database) -> Database:
    with database.session() as s:
        transfer.import_catalog(s, ADMIN, demo_files())
    return database


def _approved_codes(db: Database) -> set[str]:
    with db.session() as s:
        return {o.code for o in assemble(s, approved=True).offers}


def test_draft_submit_approve(demo: Database) -> None:
    with demo.session() as s:
        draft = offers.get_offer(s, "CC-GOLD")
        assert (draft.extra["status"], draft.extra["approved_revision"]) == ("draft", None)
        pending = offers.submit(s, MANAGER, "CC-GOLD", draft.version)
        assert pending.extra["status"] == "pending"
    assert "CC-GOLD" not in _approved_codes(demo)  # pending is not deployable
    with demo.session() as s:
        approved = offers.approve(s, APPROVER, "CC-GOLD", pending.version, "looks good")
        assert approved.extra == {"status": "approved", "revision": 1, "approved_revision": 1}
    assert _approved_codes(demo) == {"CC-GOLD"}


def test_editing_an_approved_offer_opens_a_pending_revision(demo: Database) -> None:
    with demo.session() as s:
        v = offers.submit(s, MANAGER, "CC-GOLD", offers.get_offer(s, "CC-GOLD").version).version
        v = offers.approve(s, APPROVER, "CC-GOLD", v).version
        current = offers.get_offer(s, "CC-GOLD")
        changed = current.spec.model_copy(update={"name": "Gold card, now metal"})
        edited = offers.update_offer(s, MANAGER, "CC-GOLD", changed, current.version)
        assert edited.extra == {"status": "pending", "revision": 2, "approved_revision": 1}
    with demo.session() as s:  # deployments still take revision 1
        (gold,) = [o for o in assemble(s, approved=True).offers if o.code == "CC-GOLD"]
        assert gold.name == "Gold credit card"
        history = offers.revisions(s, "CC-GOLD")
        assert [(r["revision"], r["status"], r["approved"]) for r in history] == [
            (1, "approved", True),
            (2, "pending", False),
        ]


def test_rejection_needs_a_comment_and_sends_it_back(demo: Database) -> None:
    with demo.session() as s:
        v = offers.submit(s, MANAGER, "LOAN-EV", offers.get_offer(s, "LOAN-EV").version).version
        with pytest.raises(Conflict, match="needs a comment"):
            offers.reject(s, APPROVER, "LOAN-EV", v, "  ")
        rejected = offers.reject(s, APPROVER, "LOAN-EV", v, "APR must be 5.9%")
        assert rejected.extra["status"] == "rejected"
        fixed = rejected.spec.model_copy(
            update={"attributes": {"product_type": "loan", "apr": 5.9}}
        )
        again = offers.update_offer(s, MANAGER, "LOAN-EV", fixed, rejected.version)
        assert again.extra["status"] == "draft"
        (rev,) = offers.revisions(s, "LOAN-EV")
        assert rev["decisions"][0]["comment"] == "APR must be 5.9%"


def test_transitions_that_do_not_apply_are_refused(demo: Database) -> None:
    with demo.session() as s:
        draft = offers.get_offer(s, "EDU-FRAUD")
        with pytest.raises(Conflict, match="must be pending to approve"):
            offers.approve(s, APPROVER, "EDU-FRAUD", draft.version)
        pending = offers.submit(s, MANAGER, "EDU-FRAUD", draft.version)
        with pytest.raises(Conflict, match="must be draft or rejected to submit"):
            offers.submit(s, MANAGER, "EDU-FRAUD", pending.version)
        back = offers.withdraw(s, MANAGER, "EDU-FRAUD", pending.version)
        assert back.extra["status"] == "draft"


def test_an_approver_approves_only_the_version_they_read(demo: Database) -> None:
    with demo.session() as s:
        read = offers.submit(s, MANAGER, "SAV-EASY", offers.get_offer(s, "SAV-EASY").version)
        changed = read.spec.model_copy(update={"value": 61.0})
        offers.update_offer(s, MANAGER, "SAV-EASY", changed, read.version)  # still pending
        with pytest.raises(Stale):
            offers.approve(s, APPROVER, "SAV-EASY", read.version)


def test_unchanged_edits_do_nothing_and_every_step_is_audited(demo: Database) -> None:
    with demo.session() as s:
        current = offers.get_offer(s, "SVC-ADVISOR")
        same = offers.update_offer(s, MANAGER, "SVC-ADVISOR", current.spec, current.version)
        assert same.version == current.version
        v = offers.submit(s, MANAGER, "SVC-ADVISOR", current.version).version
        offers.approve(s, APPROVER, "SVC-ADVISOR", v, "ok")
    with demo.session() as s:
        trail = [
            (e.operator, e.action, (e.after or {}).get("status"))
            for e in s.query(AuditEntry)
            .filter(AuditEntry.key == "SVC-ADVISOR")
            .order_by(AuditEntry.id)
        ]
    assert trail == [
        ("ann", "offers.create", None),  # by the import that made the demo catalog
        ("olga", "offers.submit", "pending"),
        ("abe", "offers.approve", "approved"),
    ]
