"""The A/B test, the gate and the decay test under production-shaped traffic (issue 27).

Why: each of these decisions promises an error rate. This section measures them, with 95%
(Wilson) intervals, over the conditions issue 27 names, and the power beside them, in one run
(``benchmarks/decisions.py`` prints it with the drift section).

What, per table (``reps`` repetitions per cell: 2,000 at full size, 40 with ``--smoke``):

1. A/A false promotions, random routing: ``driftloop.ab.simulation`` (the vectorized twin of
   ``ab.evaluate.decide``), 20,000 records per test, a look every 100, accuracy 0.5-0.995 and
   MAE, Staging share 0.01-0.5; "before" is the plug-in variance the test used until issue 27.
2. A/A false promotions, sticky clients: 100-10,000 clients of lognormal activity, per-client
   accuracy Beta with intra-client correlation 0.1 (or per-client error scales), routed by a
   uniform point per client as ``TrafficSplit.variant_for`` routes a key.
3. Power: accuracy 0.55 against 0.57, share 0.5: tests that promote, and the median records
   to a decision, today's variance against the plug-in one in the same draws.
4. The gate over every look (``gate_retries`` 3: the first gate on ``rows`` rows, then up to
   three re-gates each on ``rows`` more): ever staged, ever rejected by the test, undecided.
5. Decay false alarms on healthy batches of a version the gate staged: reference = the gate
   holdout it won on (before) or an independent out-of-sample reference (today: the
   cross-validated predictions over its training rows, modelled as an independent sample of
   ``CV_ROWS`` rows at the version's accuracy).

6. Sample-ratio mismatch (``driftloop.ab.srm``), random routing looked at every 100 requests:
   a 48/52 fault against 50/50 caught within 20,000 requests, false alarms over 200,000
   requests (10x ``reps`` runs); sticky routing counts clients, and the table gives the
   smallest fault caught in 90% of runs by the end of a test with that many clients.

A cell meets its target when the estimate is at most the target and its 95% upper bound at
most 1.3x the target. A caller may set ``args.reps`` (or ``--batches``) to run every cell at
another size (the full size is 2,000; say which size ran when quoting the figures).
"""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
from scipy import stats
from support.decisions import run_section

from driftloop.ab.simulation import (
    PLUG_IN,
    POOLED,
    aa_draws,
    decisions_and_records,
    sticky_draws,
)
from driftloop.config import MonitoringSettings, TrainingSettings
from driftloop.gate.simulation import Scenario, ever_rates, paired_rows
from driftloop.gate.statistics import judge, look_alpha
from driftloop.performance.realized import drop_test
from driftloop.task import metric as metric_named

ALPHA, TAU, MIN_SAMPLES, LOOK = 0.05, 0.02, 200, 100  # the shipped ab settings, a look / 100
RECORDS = 20_000
CHUNK = 250  # tests drawn at once: memory stays under a few hundred MB
CV_ROWS = 1_000


def _wilson(k: int, n: int) -> str:
    low, high = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    return f"{k / n:.2%} [{low:.1%}, {high:.1%}]"


def _meets(k: int, n: int, target: float) -> str:
    high = stats.binomtest(k, n).proportion_ci(0.95, method="wilson").high
    return "yes" if k / n <= target and high <= 1.3 * target else "**no**"


def _chunks(reps: int) -> list[tuple[int, int]]:
    return [(start, min(CHUNK, reps - start)) for start in range(0, reps, CHUNK)]


# --- cells: each a plain function of its arguments, so workers can run them ------------------


def aa_random(accuracy: float | None, share: float, reps: int, seed: int) -> dict[str, Any]:
    counts = {POOLED: 0, PLUG_IN: 0}
    for start, size in _chunks(reps):
        if accuracy is None:  # MAE: absolute normal errors, the same law for both arms
            rng = np.random.default_rng(seed + start)
            to_staging = rng.random((size, RECORDS)) < share
            outcome = np.abs(rng.standard_normal((size, RECORDS)))
        else:
            to_staging, outcome = aa_draws(size, RECORDS, accuracy, share, seed + start)
        for variance in counts:
            decisions, _ = decisions_and_records(
                to_staging,
                outcome,
                ALPHA,
                TAU,
                MIN_SAMPLES,
                LOOK,
                variance=variance,
                higher_is_better=accuracy is not None,
            )
            counts[variance] += int((decisions > 0).sum())
    return {"accuracy": accuracy, "share": share, "reps": reps, **counts}


def aa_sticky(
    clients: int, share: float, accuracy: float | None, reps: int, seed: int
) -> dict[str, Any]:
    promoted = any_decision = 0
    for start, size in _chunks(reps):
        traffic = sticky_draws(size, RECORDS, share, clients, seed + start, accuracy, icc=0.1)
        decisions, _ = decisions_and_records(
            traffic.to_staging,
            traffic.outcome,
            ALPHA,
            TAU,
            MIN_SAMPLES,
            LOOK,
            traffic.client,
            higher_is_better=accuracy is not None,
        )
        promoted += int((decisions > 0).sum())
        any_decision += int((decisions != 0).sum())
    return {
        "clients": clients,
        "share": share,
        "accuracy": accuracy,
        "reps": reps,
        "promoted": promoted,
        "decided": any_decision,
    }


def power(reps: int, seed: int, records: int) -> dict[str, Any]:
    seen: dict[str, list[float]] = {POOLED: [], PLUG_IN: []}
    for start, size in _chunks(reps):
        rng = np.random.default_rng(seed + start)
        to_staging = rng.random((size, records)) < 0.5
        outcome = rng.random((size, records)) < np.where(to_staging, 0.57, 0.55)
        for variance in seen:
            decisions, at = decisions_and_records(
                to_staging, outcome, ALPHA, TAU, MIN_SAMPLES, LOOK, variance=variance
            )
            seen[variance] += np.where(decisions > 0, at, np.inf).tolist()
    return {"reps": reps, "records": records, **seen}


def gate_cell(
    label: str, scenario: Scenario, tolerance: float, reps: int, seed: int, method: str = "today"
) -> dict:
    """Ever staged / rejected / undecided over four looks; ``method`` "before": MAE and RMSE
    bounded as issue 27's first round did (``gate_before_27``), on the same draws."""
    from support.gate_before_27 import gate_before

    training = TrainingSettings(min_holdout=80, gate_alpha=0.05, tolerance=tolerance)
    if method == "before":
        with gate_before():
            rates = ever_rates(scenario, training, reps, seed)
    else:
        rates = ever_rates(scenario, training, reps, seed)
    return {"label": label, "rows": scenario.rows, "reps": reps, "method": method, **rates}


def gate_power_before(scenario: Scenario, reps: int, seed: int) -> float:
    """Today's power against the gate before issue 27: one look at the whole gate_alpha with
    Fieller's interval (``loss_ratio_interval``) or Tango's, at the first look."""
    from driftloop.gate.statistics import loss_ratio_interval, tango_interval

    rng, staged = np.random.default_rng(seed), 0
    for _ in range(reps):
        challenger, production = paired_rows(scenario, rng)
        if scenario.metric == "accuracy":
            low = tango_interval(challenger, production, 0.05).low
        else:
            _, _, high = loss_ratio_interval(challenger, production, 0.05)
            if scenario.metric == "rmse":
                high = math.sqrt(max(high, 0.0))
            low = 1 - high
        staged += low > 0
    return staged / reps


def srm_cell(kind: str, reps: int, seed: int, clients: int = 0) -> dict[str, Any]:
    from driftloop.ab.srm import SRM_ALPHA, log_bayes_factors

    rng, threshold = np.random.default_rng(seed), math.log(1 / SRM_ALPHA)
    if kind == "sticky":  # one look at the end: the clients split by their keys
        for fault in np.arange(0.005, 0.2, 0.0025):
            staging = rng.binomial(clients, 0.5 + fault, reps)
            caught = (log_bayes_factors(staging, np.full(reps, clients), 0.5) >= threshold).mean()
            if caught >= 0.9:
                return {"kind": kind, "clients": clients, "reps": reps, "fault": float(fault)}
        return {"kind": kind, "clients": clients, "reps": reps, "fault": None}
    share, requests = (0.52, 20_000) if kind == "fault" else (0.5, 200_000)
    looks, alarms = np.arange(100, requests + 1, 100), 0
    for start in range(0, reps, 500):
        size = min(500, reps - start)
        staging = np.cumsum(rng.binomial(100, share, (size, len(looks))), axis=1)
        alarms += int((log_bayes_factors(staging, looks[None, :], 0.5) >= threshold).any(1).sum())
    return {"kind": kind, "reps": reps, "alarms": alarms}


def decay_cell(batch: int, reps: int, seed: int) -> dict[str, Any]:
    """A challenger 3 points better than Production (0.77) on a 300-row gate holdout, staged
    at the first look; healthy batches at its true accuracy 0.80 judged against the holdout
    it won on, and against an independent reference."""
    rng = np.random.default_rng(seed)
    training = TrainingSettings(min_holdout=80, gate_alpha=0.05)
    monitoring = MonitoringSettings(min_drop=0.0, min_rows=min(30, batch))
    accuracy = metric_named("accuracy")
    scenario = Scenario("accuracy", 300, 0.03, accuracy=0.77, discordance=0.2)
    alarms = {"holdout": 0, "independent": 0}
    done = 0
    while done < reps:
        challenger, production = paired_rows(scenario, rng)
        if judge(challenger, production, "accuracy", training).outcome != "staging":
            continue
        done += 1
        current = (rng.random(batch) < 0.80).astype(float)
        fresh = (rng.random(CV_ROWS) < 0.80).astype(float)
        alarms["holdout"] += drop_test(current, challenger, accuracy, monitoring).decayed
        alarms["independent"] += drop_test(current, fresh, accuracy, monitoring).decayed
    return {"batch": batch, "reps": reps, "alpha": monitoring.alpha, **alarms}


# --- the section -----------------------------------------------------------------------------


def run(args: Any) -> None:
    reps = getattr(args, "reps", None) or args.batches or (40 if args.smoke else 2000)
    seed = args.seed
    smoke = args.smoke
    accuracies = (0.55, 0.99) if smoke else (0.5, 0.55, 0.9, 0.99, 0.995)
    shares = (0.1, 0.5) if smoke else (0.01, 0.05, 0.1, 0.5)
    jobs: list[tuple[str, Any, tuple]] = []
    for accuracy in (*accuracies, None):
        for share in shares:
            jobs.append(("aa", aa_random, (accuracy, share, reps, seed)))
    sticky = (
        [(300, 0.1, 0.55)]
        if smoke
        else [(c, s, a) for c in (100, 300, 1000, 10_000) for s in (0.1, 0.5) for a in (0.55, None)]
    )
    for clients, share, accuracy in sticky:
        jobs.append(("sticky", aa_sticky, (clients, share, accuracy, reps, seed)))
    jobs.append(("power", power, (reps, seed, 20_000 if smoke else 60_000)))
    gate_reps = getattr(args, "gate_reps", None) or (min(60, reps) if smoke else reps)
    jobs += gate_jobs(smoke, gate_reps, seed)
    for batch in (30, 100, 300, 1000) if not smoke else (30, 300):
        jobs.append(("decay", decay_cell, (batch, reps, seed)))
    jobs.append(("srm", srm_cell, ("fault", reps, seed)))
    jobs.append(("srm", srm_cell, ("aa", 10 * reps, seed)))
    for clients in (100, 1000, 10_000):
        jobs.append(("srm", srm_cell, ("sticky", reps, seed, clients)))

    sections = getattr(args, "sections", None)  # e.g. {"gate", "gate_power"}: only those
    if sections:
        jobs = [job for job in jobs if job[0].removesuffix("_before") in sections]
    with ProcessPoolExecutor(max(1, args.workers)) as pool:
        # the slowest first (the bootstrap-t "before" cells), so that two workers end together
        order = sorted(range(len(jobs)), key=lambda i: "before" not in jobs[i][2])
        futures = {i: pool.submit(jobs[i][1], *jobs[i][2]) for i in order}
        results = [(kind, futures[i].result()) for i, (kind, _, _) in enumerate(jobs)]
    _print(results, reps, gate_reps)


def gate_jobs(smoke: bool, reps: int, seed: int) -> list[tuple[str, Any, tuple]]:
    """The gate's cells, today's and before (bootstrap-t, 1,000 rows x 4 looks: too slow)."""
    jobs: list[tuple[str, Any, tuple]] = []
    for rows in (80,) if smoke else (80, 300, 1000):
        methods = ("today",) if rows > 300 else ("today", "before")
        cells = []
        for metric in ("accuracy", "mae", "rmse"):
            cells.append((f"{metric}, equal, tolerance 0", Scenario(metric, rows, 0.0), 0.0))
            worse = Scenario(metric, rows, -0.05)
            cells.append((f"{metric}, worse by the margin 0.05", worse, 0.05))
        cells += [
            ("mae, challenger t 3 df", Scenario("mae", rows, 0.0, challenger_tails=3.0), 0.0),
            ("rmse, challenger t 5 df", Scenario("rmse", rows, 0.0, challenger_tails=5.0), 0.0),
            (
                "rmse, challenger 5% rows at 5x sd",
                Scenario("rmse", rows, 0.0, contamination=0.05),
                0.0,
            ),
        ]
        for label, scenario, tolerance in cells:
            if scenario.metric == "accuracy":  # Tango's interval: no before/after
                jobs.append(("gate", gate_cell, (label, scenario, tolerance, reps, seed)))
                continue
            for method in methods:
                job = (label, scenario, tolerance, reps, seed, method)
                jobs.append(("gate", gate_cell, job))
    for metric, rows in [(m, r) for r in (300, 1000) for m in ("accuracy", "mae", "rmse")]:
        better = Scenario(metric, rows, 0.0675 if metric == "accuracy" else 0.15)
        label = f"{metric}, 15% lower error, {rows} rows"
        for method in ("today",) if metric == "accuracy" else ("today", "before"):
            job = (label, better, 0.0, reps, seed, method)
            jobs.append(("gate_power", gate_cell, job))
        jobs.append(("gate_power_before", gate_power_before, (better, reps, seed)))
    return jobs


def _print(results: list[tuple[str, Any]], reps: int, gate_reps: int) -> None:
    by_kind: dict[str, list[Any]] = {}
    for kind, result in results:
        by_kind.setdefault(kind, []).append(result)
    print(
        f"\n## A/B, gate and decay (issue 27)\n\n{reps} repetitions per cell "
        f"({gate_reps} for the gate); 95% Wilson intervals.\n"
    )
    print(f"### A/A false promotions, random routing ({RECORDS} records, a look every {LOOK})\n")
    print("| metric | Production accuracy | Staging share | today | meets 5% | before |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in by_kind.get("aa", []):
        name = "MAE" if r["accuracy"] is None else "accuracy"
        level = "-" if r["accuracy"] is None else f"{r['accuracy']:g}"
        print(
            f"| {name} | {level} | {r['share']:g} | {_wilson(r[POOLED], r['reps'])} | "
            f"{_meets(r[POOLED], r['reps'], ALPHA)} | {_wilson(r[PLUG_IN], r['reps'])} |"
        )
    print("\n### A/A false promotions, sticky clients (intra-client correlation 0.1)\n")
    print("| clients | Staging share | metric | promoted | meets 5% | any decision |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in by_kind.get("sticky", []):
        name = "MAE" if r["accuracy"] is None else f"accuracy {r['accuracy']:g}"
        print(
            f"| {r['clients']} | {r['share']:g} | {name} | {_wilson(r['promoted'], r['reps'])} "
            f"| {_meets(r['promoted'], r['reps'], ALPHA)} | "
            f"{_wilson(r['decided'], r['reps'])} |"
        )
    for r in by_kind.get("power", []):
        today, before = np.array(r[POOLED]), np.array(r[PLUG_IN])
        ratio = np.median(today) / np.median(before)
        print(f"\n### A/B power: accuracy 0.55 vs 0.57, share 0.5 ({r['records']} records)\n")
        print("| variance | promoted | median records to promote |\n| --- | --- | --- |")
        for name, values in (("today (pooled, clustered)", today), ("before (plug-in)", before)):
            k = int(np.isfinite(values).sum())
            print(f"| {name} | {_wilson(k, r['reps'])} | {np.median(values):.0f} |")
        print(f"\nratio of medians today / before: {ratio:.3f} (target at most 1.25)")
    _print_gate(by_kind)
    print("\n### Decay false alarms, healthy batches of a version the gate staged (min_drop 0)\n")
    print(
        "| batch rows | reference = winning holdout (before) | independent reference (today) "
        "| meets alpha + 0.5 point |\n| --- | --- | --- | --- |"
    )
    for r in by_kind.get("decay", []):
        target = r["alpha"] + 0.005
        print(
            f"| {r['batch']} | {_wilson(r['holdout'], r['reps'])} | "
            f"{_wilson(r['independent'], r['reps'])} | "
            f"{_meets(r['independent'], r['reps'], target)} |"
        )
    _print_srm(by_kind.get("srm", []))
    print(
        f"\n_look alphas of the gate: {[look_alpha(TrainingSettings(), a) for a in (1, 2, 3, 4)]}_"
    )


def _print_srm(results: list[dict[str, Any]]) -> None:
    print("\n### Sample-ratio mismatch (mixture SPRT, alpha 0.001)\n")
    for r in results:
        if r["kind"] == "fault":
            print(
                f"- 48/52 against 50/50, random routing, caught within 20,000 requests (a look "
                f"every 100): {_wilson(r['alarms'], r['reps'])} of {r['reps']} runs (target 90%)"
            )
        elif r["kind"] == "aa":
            print(
                f"- A/A, 200,000 requests, a look every 100: false alarms "
                f"{_wilson(r['alarms'], r['reps'])} of {r['reps']} runs "
                f"(meets 0.1%: {_meets(r['alarms'], r['reps'], 0.001)})"
            )
        else:
            fault = "none up to 20 points" if r["fault"] is None else f"{r['fault']:.2%}"
            print(
                f"- sticky routing, {r['clients']} clients: smallest fault caught in 90% of "
                f"{r['reps']} runs: {fault} (from 50%)"
            )


def _print_gate(by_kind: dict[str, list[Any]]) -> None:
    def staged(r: dict[str, Any]) -> int:
        return round(r["staged"] * r["reps"])

    before = {
        (r["label"], r["rows"]): r for r in by_kind.get("gate", []) if r["method"] == "before"
    }
    print("\n### The gate over every look (gate_retries 3, holdout grows by `rows` per look)\n")
    print(
        "| challenger | first-look rows | ever staged | meets | ever rejected by the test "
        "| undecided after all looks | before: ever staged |\n"
        "| --- | --- | --- | --- | --- | --- | --- |"
    )
    for r in by_kind.get("gate", []):
        if r["method"] == "before":
            continue
        target = 0.06 if ("df" in r["label"] or "sd" in r["label"]) else 0.05
        old = before.get((r["label"], r["rows"]))
        was = "-" if old is None else _wilson(staged(old), old["reps"])
        print(
            f"| {r['label']} | {r['rows']} | {_wilson(staged(r), r['reps'])} | "
            f"{_meets(staged(r), r['reps'], target)} (target {target:.0%}) | "
            f"{_wilson(round(r['rejected'] * r['reps']), r['reps'])} | {r['undecided']:.1%} | "
            f"{was} |"
        )
    print("\n### Gate power: 15% lower error (accuracy: +6.75 points on 0.55)\n")
    print(
        "| metric | today, ever staged | before (issue 27 first round), ever staged "
        "| before issue 27: one look at alpha 0.05 |\n| --- | --- | --- | --- |"
    )
    powers = by_kind.get("gate_power", [])
    for r, one_look in zip(
        [r for r in powers if r["method"] == "today"],
        by_kind.get("gate_power_before", []),
        strict=True,
    ):
        old = next(
            (b for b in powers if b["method"] == "before" and b["label"] == r["label"]), None
        )
        was = "-" if old is None else _wilson(staged(old), old["reps"])
        print(
            f"| {r['label']} | {_wilson(staged(r), r['reps'])} | {was} | "
            f"{_wilson(round(one_look * r['reps']), r['reps'])} |"
        )


if __name__ == "__main__":
    raise SystemExit(run_section(run, __doc__))
