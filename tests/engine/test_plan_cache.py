"""Compiled rules are kept across plans by text and schema (engine/plan.py): plans built
at once in threads (a node's refresh, console pages) share the cache safely, and a plan
decides the same whether its rules came from the cache or not."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from overture.catalog import load_catalog
from overture.demo import CATALOG_PATH
from overture.engine import DecisionRequest, build_plan, plan


def test_plans_built_in_threads_with_a_tiny_cache_all_build(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    catalog = load_catalog(CATALOG_PATH)
    monkeypatch.setattr(plan, "_KEPT", {})  # (other tests filled the process's cache)
    monkeypatch.setattr(plan, "RULES_KEPT", 3)  # evicting all the time
    with ThreadPoolExecutor(8) as pool:
        plans = list(pool.map(lambda _: build_plan(catalog, validated=True), range(24)))
    assert len(plan._KEPT) <= 3
    request = DecisionRequest.for_placements(
        list(plans[0].placements), profile={"customer_id": "C1", "age": 30}
    )
    chosen = {tuple(p.offer_code for p in x.decide(request).propositions) for x in plans}
    assert len(chosen) == 1
