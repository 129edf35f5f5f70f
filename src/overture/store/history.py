"""Contact and response history, and the counters derived from it: the tables (the history
package, src/overture/history/, reads and writes them).

`propositions` holds every offer a runtime proposed (with its tracking code, score and
probability); `events` every event a touchpoint posted (presented, accepted, rejected or a
custom name), idempotent per environment by the client's event id. Both are append-only:
they are the record that capping, suppression, learning and reporting read.

Two small tables make presentation policies exact when several runtime nodes share the
database: `profile_versions` numbers each change to a profile's counted history, so a node
that decided from an outdated view of it finds out when it records (compare-and-set), and
`inventory_counters` counts an offer's presentations per day and in total, incremented
only while under the limit. Both can be rebuilt from the history.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from overture.store.models import Base

# SQLite autoincrements only an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit key.
Id = BigInteger().with_variant(Integer(), "sqlite")


class PropositionRow(Base):
    __tablename__ = "propositions"
    __table_args__ = (
        Index("ix_propositions_profile", "environment", "profile_id", "decided_at"),
        Index("ix_propositions_time", "environment", "decided_at"),  # the reports' hours
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    tracking_code: Mapped[str] = mapped_column(String(64), unique=True)
    environment: Mapped[str] = mapped_column(String(64))
    deployment: Mapped[int] = mapped_column(Integer)
    audience: Mapped[str] = mapped_column(String(64))
    profile_id: Mapped[str | None] = mapped_column(String(128))
    session_id: Mapped[str | None] = mapped_column(String(128))
    placement: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    offer_code: Mapped[str] = mapped_column(String(64))
    categories: Mapped[str] = mapped_column(String(2000))  # nearest first, space-separated
    # the profile's segments when it was decided (space-separated; "" for a batch's)
    segments: Mapped[str] = mapped_column(String(2000), default="", server_default="")
    rank: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    probability: Mapped[float] = mapped_column(Float)
    fallback: Mapped[bool] = mapped_column(Boolean)
    decided_at: Mapped[dt.datetime] = mapped_column()


class EventRow(Base):
    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("environment", "event_id", name="uq_events_event_id"),
        Index("ix_events_profile", "environment", "profile_id", "at"),
        Index("ix_events_tracking_code", "tracking_code"),
        Index("ix_events_time", "environment", "at"),  # the reports' hours
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    environment: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(64))  # as posted
    kind: Mapped[str] = mapped_column(String(16))  # presented, accepted, rejected, custom
    counted: Mapped[bool] = mapped_column(Boolean)  # read by presentation policies
    tracking_code: Mapped[str | None] = mapped_column(String(64))
    audience: Mapped[str | None] = mapped_column(String(64))
    profile_id: Mapped[str | None] = mapped_column(String(128))
    session_id: Mapped[str | None] = mapped_column(String(128))
    offer_code: Mapped[str | None] = mapped_column(String(64))
    categories: Mapped[str] = mapped_column(String(2000), default="")
    segments: Mapped[str] = mapped_column(
        String(2000), default="", server_default=""
    )  # its proposition's
    channel: Mapped[str | None] = mapped_column(String(64))
    placement: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column()
    received_at: Mapped[dt.datetime] = mapped_column()
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ProfileVersionRow(Base):
    __tablename__ = "profile_versions"

    environment: Mapped[str] = mapped_column(String(64), primary_key=True)
    audience: Mapped[str] = mapped_column(String(64), primary_key=True)
    profile_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class InventoryCounterRow(Base):
    __tablename__ = "inventory_counters"

    environment: Mapped[str] = mapped_column(String(64), primary_key=True)
    offer_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD or total
    used: Mapped[int] = mapped_column(Integer)


class ReportDailyRow(Base):
    """Offer performance per UTC day (history/rollups.py): propositions by the day they
    were decided, events by the day they happened; one row per offer, placement, channel,
    category and segment (`*`: every profile, whatever its segments). Kept exact in the
    transaction that records the history it counts; rebuilt from the history on demand."""

    __tablename__ = "report_daily"

    environment: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD
    offer_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    placement: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    category: Mapped[str] = mapped_column(String(64), primary_key=True)
    segment: Mapped[str] = mapped_column(String(64), primary_key=True)
    propositions: Mapped[int] = mapped_column(BigInteger, default=0)
    presented: Mapped[int] = mapped_column(BigInteger, default=0)
    accepted: Mapped[int] = mapped_column(BigInteger, default=0)
    rejected: Mapped[int] = mapped_column(BigInteger, default=0)
