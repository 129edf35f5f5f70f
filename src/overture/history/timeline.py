"""A profile's contact and response history, as a support desk reads it: the offers
proposed to the customer, newest first, each with what the customer did about it, and the
events that named no proposition."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from overture.history.tables import E, P
from overture.store import Database


def profile_history(
    db: Database, environment: str, audience: str | None, profile_id: str, limit: int
) -> dict[str, Any]:
    with db.engine.connect() as conn:
        query = (
            select(P)
            .where(P.c.environment == environment, P.c.profile_id == profile_id)
            .order_by(P.c.decided_at.desc(), P.c.id.desc())
            .limit(limit)
        )
        if audience is not None:
            query = query.where(P.c.audience == audience)
        propositions = [dict(r) for r in conn.execute(query).mappings()]
        codes = [p["tracking_code"] for p in propositions]
        by_code: dict[str, list[dict[str, Any]]] = {c: [] for c in codes}
        if codes:
            for row in conn.execute(
                select(E).where(E.c.tracking_code.in_(codes)).order_by(E.c.at, E.c.id)
            ).mappings():
                by_code[row["tracking_code"]].append(_event(dict(row)))
        untracked = select(E).where(
            E.c.environment == environment,
            E.c.profile_id == profile_id,
            E.c.tracking_code.is_(None),
        )
        if audience is not None:
            untracked = untracked.where(E.c.audience == audience)
        others = [
            _event(dict(r))
            for r in conn.execute(
                untracked.order_by(E.c.at.desc(), E.c.id.desc()).limit(limit)
            ).mappings()
        ]
    return {
        "environment": environment,
        "profile_id": profile_id,
        "propositions": [
            {
                "tracking_code": p["tracking_code"],
                "decided_at": p["decided_at"].isoformat() + "Z",
                "offer": p["offer_code"],
                "placement": p["placement"],
                "channel": p["channel"],
                "rank": p["rank"],
                "score": p["score"],
                "fallback": p["fallback"],
                "deployment": p["deployment"],
                "session_id": p["session_id"],
                "events": by_code[p["tracking_code"]],
            }
            for p in propositions
        ],
        "other_events": others,
    }


def _event(row: dict[str, Any]) -> dict[str, Any]:
    out = {
        "event_id": row["event_id"],
        "name": row["name"],
        "kind": row["kind"],
        "at": row["at"].isoformat() + "Z",
        "offer": row["offer_code"],
    }
    if row["attributes"]:
        out["attributes"] = row["attributes"]
    return out
