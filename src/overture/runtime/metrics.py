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
        # when a dependency fails (docs/runtime.md, "Failures")
        self.degraded = Counter(
            "overture_degraded_decisions",
            "Decisions answered with less than usual: without the offers policies count "
            "(reason=counts) or with a profile read earlier (reason=profile)",
            ["environment", "reason"],
            registry=r,
        )
        self.dependency_up = Gauge(
            "overture_dependency_up",
            "Whether the node's database and Redis answer (1) or not (0)",
            ["dependency"],
            registry=r,
        )
        self.counters_ready = Gauge(
            "overture_counters_ready",
            "Whether an environment's counts in Redis can be used (1), or are missing or "
            "being rebuilt from the history (0)",
            ["environment"],
            registry=r,
        )
        self.counts_taken_back = Gauge(
            "overture_counts_taken_back",
            "Claims and events whose counts Redis took back because their write failed "
            "(since the node started)",
            registry=r,
        )
        self.counters_rebuilt = Gauge(
            "overture_counters_rebuilt",
            "Environments' counters this node rebuilt from the history after Redis lost them "
            "(since the node started)",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
