"""The decision engine: compile a catalog into a DecisionPlan and decide.

>>> import datetime as dt
>>> from overture.catalog import load_catalog
>>> from overture.demo import CATALOG_PATH
>>> from overture.engine import DecisionRequest, build_plan
>>> plan = build_plan(load_catalog(CATALOG_PATH), validated=True)
>>> decision = plan.decide(DecisionRequest.for_placements(
...     ["web_home_hero"], profile={"customer_id": "C1", "age": 20, "is_student": True,
...     "products": []}, now=dt.datetime(2026, 11, 23)))
>>> decision.propositions[0].offer_code
'ACC-STUDENT'
"""

from overture.engine.history import (
    NO_HISTORY,
    History,
    HistoryEvent,
    InMemoryHistory,
    NoHistory,
)
from overture.engine.pipeline import Learner
from overture.engine.plan import DecisionPlan, build_plan
from overture.engine.request import (
    Decision,
    DecisionRequest,
    PlacementDecision,
    PlacementRequest,
    Proposition,
    RequestError,
    RuleFailure,
    Trace,
)

__all__ = [
    "NO_HISTORY",
    "Decision",
    "DecisionPlan",
    "DecisionRequest",
    "History",
    "HistoryEvent",
    "InMemoryHistory",
    "Learner",
    "NoHistory",
    "PlacementDecision",
    "PlacementRequest",
    "Proposition",
    "RequestError",
    "RuleFailure",
    "Trace",
    "build_plan",
]
