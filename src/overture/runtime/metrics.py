"""Prometheus metrics of a runtime node (GET /metrics).

Each app has its own registry, so tests can build several apps in one process. With
several worker processes, each answers for itself: scrape them one by one, or set
PROMETHEUS_MULTIPROC_DIR as prometheus_client documents to aggregate them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.exposition import generate_latest

# Latency buckets (seconds) fine enough to see a p99 under 10 ms.
disable_created_metrics()  # type: ignore[no-untyped-call]  # the _created series only add noise here

_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.decisions = Counter(
            "overture_decisions", "Decisions answered", ["environment"], registry=r
        )
        self.latency = Histogram(
            "overture_request_seconds",
            "Time to answer a runtime request",
            ["endpoint"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.events = Counter(
            "overture_events", "Events stored", ["environment", "kind"], registry=r
        )
        self.errors = Counter(
            "overture_errors", "Requests answered with an error", ["endpoint", "status"], registry=r
        )
        self.claim_conflicts = Counter(
            "overture_claim_conflicts",
            "Decisions decided again because a profile's history or an inventory changed",
            ["environment"],
            registry=r,
        )
        self.sessions_started = Counter(
            "overture_sessions_started", "Sessions started", ["environment"], registry=r
        )
        self.sessions_held = Gauge(
            "overture_sessions", "Sessions held in this node's memory", registry=r
        )
        self.deployment = Gauge(
            "overture_deployment", "Deployment number being served", ["environment"], registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
