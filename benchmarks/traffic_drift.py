"""Drift on served traffic (issue 31, item 4): false alarms and power of a traffic window's
verdict (``driftloop.drift.traffic.check_window``: the batch's calibrated tests, the features
together allowed to call drift, with the tail test).

Windows of served records are drawn as the prediction log holds them: eight positive,
correlated, skewed measurements (one with 2% missing values) and a four-level categorical,
against 5,000-row references of the same population (a fresh reference every
``windows / references`` windows, so the held-out sample's luck is part of the rate). Clean
windows at 200 to 20,000 records; skewed windows where one client sends one feature x100 (the
whole window of 500, or one record in ten) or x2 (5% of a window of 5,000 or 20,000). Beside
each rate, how often the batch rule alone (``drift.drift_share`` of the features, as a landed
batch is judged) called drift. Rates with 95% intervals clustered by reference
(``support.decisions.ClusteredRate``: Clopper-Pearson at the effective size). Evidently and
NannyML have no served-traffic check of this kind, so there is no side-by-side column.

    .venv/bin/python benchmarks/traffic_drift.py            # the full tables (a few minutes)
    .venv/bin/python benchmarks/traffic_drift.py --smoke    # tiny sizes, well under a minute
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
from support.common import machine
from support.decisions import ClusteredRate, run_all, run_section

from driftloop.config import DriftSettings
from driftloop.drift.engine import check_drift
from driftloop.drift.profile import build_profile
from driftloop.drift.traffic import check_window, traffic_settings

NUMERIC = [f"x{i}" for i in range(8)]
REGIONS = ["north", "south", "east", "west"]


def population(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    """Served records: positive, correlated, skewed measurements (x100 or x2 is a change of
    units), a categorical, and some values of x3 missing."""
    covariance = np.full((8, 8), 0.4) + 0.6 * np.eye(8)
    values = np.exp(0.25 * rng.multivariate_normal(np.zeros(8), covariance, rows))
    frame = pd.DataFrame(values * np.arange(2, 10), columns=NUMERIC)
    frame["region"] = rng.choice(REGIONS, rows, p=[0.4, 0.3, 0.2, 0.1])
    frame.loc[rng.random(rows) < 0.02, "x3"] = np.nan
    return frame


def run_cell(rows: int, share: float, factor: float, windows: int, references: int, seed: int):
    """(windows called drift per reference, windows per reference, seconds per window, (batch
    rule's drift calls, windows it judged: the first 10 per reference))."""
    rng = np.random.default_rng([seed, rows, int(share * 100), int(factor)])
    settings = DriftSettings()
    called: list[int] = []
    by_batch_rule = judged = 0
    per_reference = max(1, windows // references)
    spent = 0.0
    for _ in range(references):
        called.append(0)
        profile = build_profile(
            population(rng, 5_000),
            ["region"],
            None,
            False,
            statistics=settings.statistics,
            calibration_draws=traffic_settings(settings).draws,  # as the traffic stage stores it
            multivariate=True,
        )
        for index in range(per_reference):
            window = population(rng, rows)
            if share > 0:
                client = rng.random(rows) < share
                window.loc[client, "x2"] = window.loc[client, "x2"] * factor
            started = time.perf_counter()
            called[-1] += check_window(profile, window, settings).drifted
            spent += time.perf_counter() - started
            if index < 10:
                by_batch_rule += check_drift(profile, window, settings).drifted
                judged += 1
    tested = per_reference * references
    return called, per_reference, spent / tested, (by_batch_rule, judged)


def judged(rate_low: float, rate_high: float, skewed: bool) -> str:
    """Whether the interval shows the target met, missed, or cannot tell at this size."""
    if skewed:
        return "met" if rate_low >= 0.935 else "NOT met" if rate_high < 0.95 else "undecided"
    return "met" if rate_high <= 0.013 else "NOT met" if rate_low > 0.01 else "undecided"


def run(args: Any) -> None:
    smoke = bool(args.smoke)
    references = args.references or (2 if smoke else 20)
    windows = args.batches or (20 if smoke else 2_000)
    clean = [(500, 0.0, 1.0), (5_000, 0.0, 1.0)]
    skews = [(500, 1.0, 100.0), (500, 0.1, 100.0), (20_000, 0.05, 2.0)]
    if not smoke:
        clean = [(200, 0.0, 1.0), *clean, (20_000, 0.0, 1.0)]
        skews.insert(2, (5_000, 0.05, 2.0))
    jobs = [
        (rows, share, factor, windows if rows <= 5_000 else max(windows // 4, references))
        for rows, share, factor in [*clean, *skews]
    ]
    started = time.perf_counter()
    arguments = [(*job, references, args.seed) for job in jobs]
    results = run_all(run_cell, arguments, args.workers)
    print(f"## Drift on served traffic (issue 31, item 4){' — smoke sizes' if smoke else ''}\n")
    print(f"{machine()['cpu']}; {references} references of 5,000 rows per cell; seed {args.seed}\n")
    print(
        "| windows | records | client | called drift [95%] | target | batch rule alone "
        "| ms per window |"
    )
    print("|---|---:|---|---|---|---:|---:|")
    for (rows, share, factor, _w), (called, per_reference, seconds, batch_rule) in zip(
        jobs, results, strict=True
    ):
        measured = ClusteredRate.of(called, per_reference)
        skewed = share > 0
        client = f"{share:.0%} of records, x2 times {factor:g}" if skewed else "-"
        verdict = judged(measured.lower, measured.upper, skewed)
        print(
            f"| {'skewed' if skewed else 'clean'} | {rows:,} | {client} | {measured.text()} "
            f"| {'>= 95%' if skewed else '<= 1%'} ({verdict})"
            f" | {batch_rule[0]} of {batch_rule[1]} "
            f"| {seconds * 1000:.1f} |"
        )
    print(f"\n_traffic tables: {time.perf_counter() - started:.0f} s_")


if __name__ == "__main__":
    raise SystemExit(run_section(run, __doc__))
