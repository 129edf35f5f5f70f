"""Demo traffic: a realistic stream of decisions and events for the demo bank's customers
over past days, sent through the runtime's own API, so that the reports have something
true to show (docs/reports.md).

Each simulated day, some customers visit a web or app placement (more in the evening,
fewer at the weekend), or receive an email; the runtime decides, the touchpoint reports a
presentation (web and app; an email reports none) and, with a probability that depends on
the offer and on who the customer is, an acceptance or a rejection. Students take student
offers, the affluent take investments and premium cards, home buyers take mortgages, and
so on; every offer also has a base rate of its own. The same seed sends the same traffic.

The module is pure: it is handed `post(path, body) -> answer` (the command line's and the
console's HTTP clients), so that the demo package does no I/O of its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

Post = Callable[[str, dict[str, Any]], dict[str, Any]]

VISITS = {  # placement: share of the day's visits
    "web_home_hero": 0.30,
    "web_account_sidebar": 0.25,
    "app_home_card": 0.20,
    "web_product_banner": 0.10,
    "email_banner": 0.10,
    "app_inbox": 0.05,
}
EMAIL = frozenset({"email_banner", "email_newsletter_slot"})


def base_rate(offer: str) -> float:
    """Each offer's own appeal: 1 % to 14 %, fixed by its code."""
    digest = hashlib.sha256(offer.encode()).digest()
    return 0.01 + (digest[0] / 255) * 0.13


def appeal(offer: str, profile: Mapping[str, Any]) -> float:
    """How much more (or less) likely this customer is to accept this offer."""
    age = profile.get("age") or 40
    income = profile.get("income") or 0
    products = profile.get("products") or []
    factor = 1.0
    if "STUDENT" in offer:
        factor *= 3.0 if (profile.get("is_student") or age <= 25) else 0.3
    if offer.startswith(("INV-", "RET-")) or offer in ("CC-PLATINUM", "ACC-PREMIER"):
        factor *= 2.5 if income >= 90_000 or (profile.get("balance") or 0) >= 100_000 else 0.6
    if offer.startswith("MTG-"):
        factor *= 3.0 if 28 <= age <= 45 and "mortgage" not in products else 0.4
    if offer.startswith("RET-"):
        factor *= 2.0 if age >= 55 else 0.5
    if offer.startswith("APP-") and profile.get("has_mobile_app"):
        factor *= 0.1
    return factor


@dataclass
class Sent:
    decisions: int = 0
    propositions: int = 0
    events: int = 0
    days: int = 0


def _moments(day: dt.date, visits: int, rng: random.Random) -> Iterator[dt.datetime]:
    """Visit times in a day, more of them in the evening."""
    for _ in range(visits):
        hour = min(23, max(0, int(rng.gauss(17, 4.5))))
        yield dt.datetime.combine(day, dt.time(hour, rng.randrange(60), rng.randrange(60)))


def drive(
    post: Post,
    customers: list[Mapping[str, Any]],
    *,
    days: int,
    visits_per_day: int = 400,
    today: dt.date | None = None,
    seed: int = 7,
    progress: Callable[[Sent], None] | None = None,
) -> Sent:
    """Send `days` days of traffic ending yesterday (and today, so far): decisions with
    their time (`at`, which only a demo server takes) and the events that follow."""
    rng = random.Random(seed)
    last = today or dt.datetime.now(dt.UTC).date()
    sent = Sent()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for back in range(days, -1, -1):
        day = last - dt.timedelta(days=back)
        weekend = day.weekday() >= 5
        count = int(visits_per_day * (0.7 if weekend else 1.0))
        events: list[dict[str, Any]] = []
        for moment in sorted(_moments(day, count, rng)):
            if moment > now:
                continue
            customer = customers[rng.randrange(len(customers))]
            placement = rng.choices(list(VISITS), weights=list(VISITS.values()))[0]
            answer = post(
                "/v1/decisions",
                {
                    "profile_id": str(customer["customer_id"]),
                    "placements": [{"placement": placement}],
                    "at": moment.isoformat() + "Z",
                },
            )
            sent.decisions += 1
            for offer in answer.get("placements", [{}])[0].get("offers", []):
                sent.propositions += 1
                events.extend(_events(offer, placement, customer, moment, rng))
        for start in range(0, len(events), 500):
            post("/v1/events", {"events": events[start : start + 500]})
        sent.events += len(events)
        sent.days += 1
        if progress is not None:
            progress(sent)
    return sent


def _events(
    offer: Mapping[str, Any],
    placement: str,
    customer: Mapping[str, Any],
    moment: dt.datetime,
    rng: random.Random,
) -> list[dict[str, Any]]:
    code, tracking = str(offer["offer"]), str(offer["tracking_code"])
    out: list[dict[str, Any]] = []
    email = placement in EMAIL
    if not email:
        if rng.random() > 0.92:  # not seen (below the fold, closed too soon)
            return out
        out.append({"name": "presented", "tracking_code": tracking, "at": _at(moment, 2)})
    chance = min(0.9, base_rate(code) * appeal(code, customer) * (0.5 if email else 1.0))
    roll = rng.random()
    if roll < chance:
        out.append({"name": "accepted", "tracking_code": tracking, "at": _at(moment, 40)})
    elif not email and roll < chance + 0.08:
        out.append({"name": "rejected", "tracking_code": tracking, "at": _at(moment, 20)})
    return out


def _at(moment: dt.datetime, seconds: int) -> str:
    return (moment + dt.timedelta(seconds=seconds)).isoformat() + "Z"
