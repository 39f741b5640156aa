"""Paired shadow evaluation against today's unpaired A/B test, on the same traffic (issue 31,
item 5).

Why: with shadow mode on, Staging answers every request Production serves, so once labels
arrive each request is a pair of outcomes. The paired test (``ab.design: paired``,
``driftloop.ab.paired``) should need far fewer labelled requests than comparing Staging's
served requests with Production's, and keep its false promotions at alpha.

What (one run, every design on the very same simulated requests,
``driftloop.ab.paired_simulation.paired_draws``; outcomes are simulated, not HTTP):

- Production accuracy 0.55, Staging at equal error rates (A/A) or +2 points; a share of
  requests (the discordance) on which the two disagree.
- Routing by a point per request (random traffic) or per client (sticky: 1,000 clients of
  lognormal activity, each with its own accuracy, intra-client correlation 0.1, and its own
  discordance). Staging serves a request when its point falls below the split's share; the
  paired test runs at the default split (``serving.default_staging_weight``, 10%) on the
  requests Production served, with Staging's shadow answers. The unpaired test runs at the
  default split and at 50/50 on the same requests and points.
- Every test looks after every 10 labelled requests (``ab.min_samples`` 200 per arm or pairs,
  20 clients per arm), alpha 0.05, ``tau`` 0.02 (the shipped settings); runs capped at
  100,000 labelled requests (``--smoke``: A/A at 20,000).
- A/A: the share of tests that ever promote (Wilson 95% interval). Gain: the median labelled
  requests to a decision (a run undecided at the cap counts as the cap), the share promoted,
  and the ratio unpaired / paired with a 95% bootstrap interval over tests.

Run ``nice -n 19 .venv/bin/python benchmarks/paired_ab.py`` (full) or with ``--smoke``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Any

import numpy as np
from scipy import stats

from driftloop.ab.paired_simulation import (
    PairedTraffic,
    paired_decisions_and_records,
    paired_draws,
)
from driftloop.ab.simulation import decisions_and_records
from driftloop.config.ab import ABSettings
from driftloop.config.sections import ServingSettings

AB = ABSettings()
ALPHA, TAU, MIN_SAMPLES, LOOK = AB.alpha, AB.min_effect, AB.min_samples, 10
DEFAULT_SHARE = ServingSettings().default_staging_weight
ACCURACY, LIFT, CAP, CLIENTS = 0.55, 0.02, 100_000, 1_000
CHUNK = 10  # tests drawn at once: 10 x 100,000 requests per array
DESIGNS = ("paired", "unpaired 10%", "unpaired 50/50")


def _decide(traffic: PairedTraffic) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each design's first decision and labelled requests seen, per test, on ``traffic``."""
    out = {"paired": paired_decisions_and_records(traffic, ALPHA, TAU, MIN_SAMPLES, LOOK)}
    for name, share in (("unpaired 10%", DEFAULT_SHARE), ("unpaired 50/50", 0.5)):
        routed = traffic.routed(share)
        out[name] = decisions_and_records(
            routed.to_staging, routed.served, ALPHA, TAU, MIN_SAMPLES, LOOK, routed.client
        )
    return out


def run_cell(
    tests: int, requests: int, discordance: float, lift: float, clients: int | None, seed: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """All designs over ``tests`` tests, drawn ``CHUNK`` at a time."""
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {d: [] for d in DESIGNS}
    for start in range(0, tests, CHUNK):
        size = min(CHUNK, tests - start)
        traffic = paired_draws(
            size,
            requests,
            DEFAULT_SHARE,
            seed + start,
            accuracy=ACCURACY,
            discordance=discordance,
            lift=lift,
            clients=clients,
        )
        for design, result in _decide(traffic).items():
            parts[design].append(result)
    return {
        d: (np.concatenate([p[0] for p in ps]), np.concatenate([p[1] for p in ps]))
        for d, ps in parts.items()
    }


def _wilson(k: int, n: int) -> str:
    low, high = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    return f"{k / n:.2%} [{low:.1%}, {high:.1%}]"


def _to_decision(decisions: np.ndarray, seen: np.ndarray) -> np.ndarray:
    return np.where(decisions != 0, seen, CAP).astype(float)


def _ratio(slow: np.ndarray, fast: np.ndarray, rng: np.random.Generator) -> str:
    """Median of ``slow`` over median of ``fast`` (the same tests), bootstrap 95% interval."""
    ratio = np.median(slow) / np.median(fast)
    picks = rng.integers(0, len(fast), (2000, len(fast)))
    boots = np.median(slow[picks], axis=1) / np.median(fast[picks], axis=1)
    low, high = np.percentile(boots, [2.5, 97.5])
    return f"{ratio:.1f}x [{low:.1f}, {high:.1f}]"


def aa_table(tests: int, requests: int, seed: int) -> list[str]:
    lines = [
        f"A/A false promotions ({tests} tests per row, up to {requests:,} labelled requests, "
        f"a look every {LOOK}; alpha {ALPHA})",
        "",
        "| traffic | discordance | paired (10% split, shadow) | unpaired 10% | unpaired 50/50 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for clients, label in ((None, "random"), (CLIENTS, f"sticky, {CLIENTS:,} clients")):
        for discordance in (0.30, 0.01):
            cell = run_cell(tests, requests, discordance, 0.0, clients, seed)
            rates = [_wilson(int((cell[d][0] > 0).sum()), tests) for d in DESIGNS]
            lines.append(f"| {label} | {discordance:.0%} | " + " | ".join(rates) + " |")
            seed += 10_000
    return lines


def gain_table(tests: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    lines = [
        f"+{LIFT * 100:.0f}-point gain, accuracy {ACCURACY} (random traffic, {tests} tests per "
        f"row, capped at {CAP:,} labelled requests): median labelled requests to a decision "
        "(share promoted)",
        "",
        "| discordance | paired (10% split) | unpaired 10% | unpaired 50/50 "
        "| unpaired 10% / paired | unpaired 50/50 / paired |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for discordance in (0.30, 0.10):
        cell = run_cell(tests, CAP, discordance, LIFT, None, seed)
        times = {d: _to_decision(*cell[d]) for d in DESIGNS}
        shown = [f"{np.median(times[d]):,.0f} ({(cell[d][0] > 0).mean():.0%})" for d in DESIGNS]
        ratios = [_ratio(times[d], times["paired"], rng) for d in DESIGNS[1:]]
        lines.append(f"| {discordance:.0%} | " + " | ".join(shown + ratios) + " |")
        seed += 10_000
    return lines


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            names = [line for line in info if line.startswith("model name")]
        model = names[0].split(":", 1)[1].strip() if names else model
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs (nproc), {model}, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a small run, under a minute")
    parser.add_argument("--aa-tests", type=int, default=None)
    parser.add_argument("--gain-tests", type=int, default=None)
    parser.add_argument("--seed", type=int, default=31)
    args = parser.parse_args(argv)
    aa_tests = args.aa_tests or (60 if args.smoke else 1000)
    gain_tests = args.gain_tests or (30 if args.smoke else 300)
    aa_requests = 20_000 if args.smoke else CAP
    started = time.perf_counter()
    lines = [*aa_table(aa_tests, aa_requests, args.seed), "", *gain_table(gain_tests, args.seed)]
    seconds = time.perf_counter() - started
    lines += ["", f"{machine()}; {seconds:.0f} s"]
    print("\n".join(lines))
    return {"lines": lines, "seconds": seconds}


if __name__ == "__main__":
    main()
