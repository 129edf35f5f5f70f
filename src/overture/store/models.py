"""The database tables (SQLAlchemy 2, typed).

Catalog objects are stored one row per object, keyed by name (offers by code), with their
definition as YAML text in `body`: the catalog's own format, exact for dates, and readable
in the database. `position` keeps the order the catalog was written in, so an export
reproduces it. `version` is the optimistic-concurrency counter exposed as the ETag.

Offers carry revisions (draft → pending → approved | rejected); the offer row points at
its head revision (what is being edited) and its approved one (what may be deployed).

Deployments are immutable snapshots; the audit log is append-only (the migration adds
database triggers that refuse updates and deletes).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column, relationship


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: DateTime(), dict[str, Any]: JSON()}  # noqa: RUF012


# -- operators and access --------------------------------------------------------------------
class Role(Base):
    __tablename__ = "roles"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    description: Mapped[str] = mapped_column(String(200), default="")


class Operator(Base):
    __tablename__ = "operators"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    roles: Mapped[list[OperatorRole]] = relationship(
        back_populates="operator", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def role_names(self) -> set[str]:
        return {r.role for r in self.roles}


class OperatorRole(Base):
    __tablename__ = "operator_roles"
    operator_id: Mapped[int] = mapped_column(
        ForeignKey("operators.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(ForeignKey("roles.name"), primary_key=True)
    operator: Mapped[Operator] = relationship(back_populates="roles")


class AccessToken(Base):
    """A login session: the bearer token's hash, its expiry, and whether it was revoked."""

    __tablename__ = "access_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    operator: Mapped[Operator] = relationship(lazy="joined")


class ConsoleSession(Base):
    """A browser's login to the console. The cookie carries the token (signed); the row
    holds its hash, its CSRF token, when it was last used (the idle timeout) and when it
    ends for good; logging out revokes it here, so a copied cookie dies with it."""

    __tablename__ = "console_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    operator: Mapped[Operator] = relationship(lazy="joined")


class LoginAttempts(Base):
    """Failed logins per account, per address and per (account, address) pair, to slow
    guessing down (design/throttle.py); `succeeded_at` marks a pair that logged in."""

    __tablename__ = "login_attempts"
    __table_args__ = (UniqueConstraint("scope", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))  # account, address, pair
    key: Mapped[str] = mapped_column(String(200))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    first_failure_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    blocked_until: Mapped[dt.datetime | None] = mapped_column(default=None)
    succeeded_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class ServerKey(Base):
    """Secrets the server makes itself on first use and every worker shares (the console's
    cookie signing key)."""

    __tablename__ = "server_keys"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class Environment(Base):
    """A runtime environment. `requires` names the environment where a snapshot's content
    must have run before it may be deployed here (production requires staging)."""

    __tablename__ = "environments"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    requires: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """A runtime key, valid for one environment only; only its hash is stored."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id"))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    environment: Mapped[Environment] = relationship(lazy="joined")


# -- the catalog -----------------------------------------------------------------------------
class CatalogObjectRow(Base):
    """Columns shared by every named catalog object (one table per kind)."""

    __abstract__ = True

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    body: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64))

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        # UPDATE ... WHERE version = <the version read>: of two concurrent writers, one fails
        return {"version_id_col": cls.version}


class AudienceRow(CatalogObjectRow):
    __tablename__ = "audiences"


class ChannelRow(CatalogObjectRow):
    __tablename__ = "channels"


class ZoneRow(CatalogObjectRow):
    __tablename__ = "zones"


class PlacementRow(CatalogObjectRow):
    __tablename__ = "placements"


class CategoryRow(CatalogObjectRow):
    __tablename__ = "categories"


class SegmentRow(CatalogObjectRow):
    __tablename__ = "segments"


class TreatmentRuleRow(CatalogObjectRow):
    __tablename__ = "treatment_rules"


class PolicyRow(CatalogObjectRow):
    __tablename__ = "policies"


class CatalogSettingsRow(Base):
    """The catalog's name, description, settings, context schema and offer attributes
    (one row)."""

    __tablename__ = "catalog_settings"
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - read by SQLAlchemy
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64))


class OfferRow(Base):
    __tablename__ = "offers"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    category: Mapped[str] = mapped_column(String(64), index=True)  # of the head, for filters
    # Pointers to revisions of this offer, kept by the design service (no foreign keys:
    # offers and revisions would reference each other, which complicates every migration).
    head_revision_id: Mapped[int | None] = mapped_column(Integer, default=None)
    approved_revision_id: Mapped[int | None] = mapped_column(Integer, default=None)
    version: Mapped[int] = mapped_column(Integer, default=1)
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - read by SQLAlchemy
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64))
    head: Mapped[OfferRevision | None] = relationship(
        primaryjoin="foreign(OfferRow.head_revision_id) == OfferRevision.id",
        lazy="joined",
        viewonly=True,
    )
    approved: Mapped[OfferRevision | None] = relationship(
        primaryjoin="foreign(OfferRow.approved_revision_id) == OfferRevision.id",
        lazy="joined",
        viewonly=True,
    )


class OfferRevision(Base):
    __tablename__ = "offer_revisions"
    __table_args__ = (UniqueConstraint("offer_id", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offers.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # draft, pending, approved, rejected
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    submitted_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    submitted_by: Mapped[str | None] = mapped_column(String(64), default=None)


class Approval(Base):
    """An approver's decision on a revision (the revision's status follows the latest)."""

    __tablename__ = "approvals"
    id: Mapped[int] = mapped_column(primary_key=True)
    revision_id: Mapped[int] = mapped_column(
        ForeignKey("offer_revisions.id", ondelete="CASCADE"), index=True
    )
    decision: Mapped[str] = mapped_column(String(16))  # approved, rejected
    comment: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# -- deployments and audit ---------------------------------------------------------------------
class Deployment(Base):
    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("environment_id", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    snapshot: Mapped[str] = mapped_column(Text)  # the catalog, canonical YAML
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    offers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # code -> revision number
    comment: Mapped[str] = mapped_column(Text, default="")
    deployed_by: Mapped[str] = mapped_column(String(64))
    deployed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    rollback_of: Mapped[int | None] = mapped_column(Integer, default=None)  # the number redeployed
    environment: Mapped[Environment] = relationship(lazy="joined")


class SimulationRun(Base):
    """A simulation launched from the console: what was asked, how it went, its report."""

    __tablename__ = "simulation_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    environment: Mapped[str] = mapped_column(String(64))
    placement: Mapped[str] = mapped_column(String(64))
    population: Mapped[str] = mapped_column(String(200), default="")  # "" : stored profiles
    status: Mapped[str] = mapped_column(String(16), default="queued")  # running, done, failed
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    error: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    report: Mapped[str | None] = mapped_column(Text, default=None)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    operator: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32), default="")
    key: Mapped[str] = mapped_column(String(128), default="")
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


class Lock(Base):
    """A named row writers update first, so that they take turns. Every change to the
    catalog is validated against the whole catalog: two changes each valid alone (delete a
    category; add an offer in it) must not both commit, so catalog writers serialize on the
    `catalog` row (a row lock in PostgreSQL, the write lock in SQLite)."""

    __tablename__ = "locks"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    counter: Mapped[int] = mapped_column(Integer, default=0)


CATALOG_TABLES: dict[str, type[CatalogObjectRow]] = {
    "audiences": AudienceRow,
    "channels": ChannelRow,
    "zones": ZoneRow,
    "placements": PlacementRow,
    "categories": CategoryRow,
    "segments": SegmentRow,
    "treatment_rules": TreatmentRuleRow,
    "policies": PolicyRow,
}
"""Catalog sections stored one named object per row (offers have their own tables)."""
