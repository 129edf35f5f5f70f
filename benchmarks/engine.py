"""Engine benchmark: in-process decisions per second and latency, on one core.

A generated catalog of 1,000 offers over 20 placements (about 50 candidates each) with 10
policies of all four kinds; each decision asks one placement for 3 offers for a profile
drawn from 2,000, with a history of about 12 events per profile. The same decisions are
run with rules compiled to closures (what Overture does) and with the same rules
interpreted by walking their syntax tree per evaluation (the baseline), in this run.

    python -m benchmarks.engine [--seconds 5] [--offers 1000] [--placements 20]   (make bench)

Each engine runs for `seconds` in all, in five alternating rounds so that drift in the
machine's speed affects both alike. Prints the median and the best round's decisions/s,
p50 and p99 over every decision, the ratio, and the time of a fixed pure-Python loop
measured in the same run (this machine's speed varies by more than 1.5x over minutes: the
loop tells a slow machine from a slow engine).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import statistics
import time
from typing import Any

from benchmarks.generated import catalog, history, profiles
from overture.catalog import validate_catalog
from overture.engine import DecisionPlan, DecisionRequest, History, build_plan

NOW = dt.datetime(2026, 11, 23, 12, 0)


def run_round(
    plan: DecisionPlan,
    requests: list[DecisionRequest],
    hist: History,
    seconds: float,
    start_at: int,
) -> tuple[list[int], float]:
    """Decisions round-robin for `seconds`: each one's latency (ns), and the elapsed time."""
    latencies: list[int] = []
    clock = time.perf_counter_ns
    start = clock()
    deadline = start + int(seconds * 1e9)
    i, n = start_at, len(requests)
    while True:
        t0 = clock()
        plan.decide(requests[i % n], hist)
        t1 = clock()
        latencies.append(t1 - t0)
        i += 1
        if t1 >= deadline:
            break
    return latencies, (clock() - start) / 1e9


def measure(
    plans: dict[str, DecisionPlan],
    requests: list[DecisionRequest],
    hist: History,
    seconds: float,
    rounds: int = 5,
) -> dict[str, dict[str, float]]:
    """Alternate short rounds of each plan, so that drift in the machine's speed affects
    them alike; report the median round's rate and percentiles over every decision."""
    for plan in plans.values():
        for req in requests[:200]:  # warm up
            plan.decide(req, hist)
    # What a server does once loaded: move the long-lived objects (plan, history, profiles)
    # out of the collector's sight, so collections only look at the requests' garbage.
    gc.collect()
    gc.freeze()
    latencies: dict[str, list[int]] = {name: [] for name in plans}
    rates: dict[str, list[float]] = {name: [] for name in plans}
    for r in range(rounds):
        for name, plan in plans.items():
            lat, elapsed = run_round(plan, requests, hist, seconds / rounds, r * 997)
            latencies[name].extend(lat)
            rates[name].append(len(lat) / elapsed)
    gc.unfreeze()
    out = {}
    for name, lat in latencies.items():
        lat.sort()
        out[name] = {
            "decisions": len(lat),
            "per_second": statistics.median(rates[name]),
            "best_per_second": max(rates[name]),
            "p50_us": lat[len(lat) // 2] / 1000,
            "p99_us": lat[int(len(lat) * 0.99)] / 1000,
            "mean_us": statistics.fmean(lat) / 1000,
        }
    return out


def calibration_ms() -> float:
    """A fixed pure-Python loop: the machine's speed right now (lower is faster)."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        total = 0
        for i in range(2_000_000):
            total += i
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def main(
    seconds: float = 5.0, offers: int = 1000, placements: int = 20, *, pin: bool = True
) -> dict[str, Any]:
    if pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    cat = catalog(offers, placements)
    report = validate_catalog(cat)
    assert report.ok, [str(i) for i in report.errors[:5]]
    people = profiles(2000, NOW)
    hist = history(people, cat, NOW)
    names = [p.name for p in cat.placements]
    requests = [
        DecisionRequest.for_placements(
            [(names[i % len(names)], 3)],
            profile=p,
            now=NOW,
            context={"intent": "buy" if i % 5 == 0 else "browse"},
        )
        for i, p in enumerate(people)
    ]
    t0 = time.perf_counter()
    compiled = build_plan(cat, NOW, validated=True)
    build_s = time.perf_counter() - t0
    # The next deployment, as a node sees it: the same catalog with one offer's rule
    # changed (a node keeps the rules it compiled, engine/plan.py).
    first = cat.offers[0]
    changed = cat.model_copy(
        update={
            "offers": [
                first.model_copy(update={"eligibility": "age >= 18 and tenure >= 1"}),
                *cat.offers[1:],
            ]
        }
    )
    t0 = time.perf_counter()
    build_plan(changed, NOW, validated=True)
    rebuild_s = time.perf_counter() - t0
    interpreted = build_plan(cat, NOW, compiler="interpreter", validated=True)
    per_placement = statistics.fmean(
        len(pl.candidates.get("customer", ())) for pl in compiled.placements.values()
    )
    # the two plans choose the same offers
    for req in requests[:300]:
        a = [p.offer_code for p in compiled.decide(req, hist).propositions]
        b = [p.offer_code for p in interpreted.decide(req, hist).propositions]
        assert a == b, (a, b)
    calibration = calibration_ms()
    measured = measure({"compiled": compiled, "interpreted": interpreted}, requests, hist, seconds)
    fast, slow = measured["compiled"], measured["interpreted"]
    return {
        "offers": offers,
        "placements": placements,
        "policies": len(cat.policies),
        "candidates_per_placement": per_placement,
        "plan_build_s": build_s,
        "plan_rebuild_s": rebuild_s,
        "compiled": fast,
        "interpreted": slow,
        "ratio": fast["per_second"] / slow["per_second"],
        "calibration_ms": calibration,
    }


def _print(r: dict[str, Any]) -> None:
    print(
        f"catalog: {r['offers']} offers, {r['placements']} placements "
        f"(~{r['candidates_per_placement']:.0f} candidates each), {r['policies']} policies; "
        f"plan built in {r['plan_build_s'] * 1000:.0f} ms; the next deployment (one "
        f"offer's rule changed) in {r['plan_rebuild_s'] * 1000:.0f} ms (aim: <= 100 ms)"
    )
    print("3-offer decisions on one core, with history:")
    print(f"{'':14}{'decisions/s':>12}{'best round':>12}{'p50 µs':>9}{'p99 µs':>9}{'mean µs':>9}")
    for key, label in (("compiled", "compiled"), ("interpreted", "interpreted*")):
        m = r[key]
        print(
            f"{label:14}{m['per_second']:>12,.0f}{m['best_per_second']:>12,.0f}"
            f"{m['p50_us']:>9.0f}{m['p99_us']:>9.0f}{m['mean_us']:>9.1f}"
        )
    print(f"ratio compiled / interpreted: {r['ratio']:.1f}x")
    print("* baseline: the same rules evaluated by walking their syntax tree per request")
    print(
        f"machine speed: a fixed 2M-iteration Python loop took {r['calibration_ms']:.0f} ms "
        "before the rounds (to compare runs: this machine's speed drifts)"
    )
    c = r["compiled"]
    for aim in (20_000, 40_000):
        verdict = (
            "met"
            if c["per_second"] >= aim and c["p99_us"] < 1000
            else (
                "met on the best round"
                if c["best_per_second"] >= aim and c["p99_us"] < 1000
                else f"NOT met ({c['per_second'] / aim:.0%} of it)"
            )
        )
        print(f"aim (>= {aim:,} decisions/s, p99 < 1 ms): {verdict}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--offers", type=int, default=1000)
    parser.add_argument("--placements", type=int, default=20)
    args = parser.parse_args()
    _print(main(args.seconds, args.offers, args.placements))
