"""The multivariate drift test's false alarms and power (issue 31, item 1): a section of
``benchmarks/decisions.py`` (``--only multivariate``).

Clean batches: ten numeric features (two correlated 0.8, one with 10% missing values, one
lognormal) and a categorical tied to a third, drawn from the reference's population, at 100 to
100,000 rows against 5,000-row references; flagged with the default settings (level: half of
``drift.false_alarm_rate``, floor +10%). Power: the two correlated features go to correlation
-0.8 with their marginals kept, 1,000-row batches; the per-feature verdict is shown beside it
(it cannot see this change). 95% intervals clustered by reference (``ClusteredRate``).
Evidently has no multivariate data-drift method of this kind;
NannyML's reconstruction drift runs beside this test on the same data in
``multivariate_nannyml.py`` (its own virtualenv).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from support.decisions import ClusteredRate, run_cells, run_section
from support.drift_data import correlated_frame as frame

from driftloop.config import DriftSettings
from driftloop.drift.engine import check_drift, multivariate_test
from driftloop.drift.profile import build_profile
from driftloop.vocabulary import DriftStatus


def run_cell(rows: int, rho: float, batches: int, references: int, seed: int) -> tuple:
    """(multivariate flags per reference, per-feature drift calls and batches judged by it per
    reference (flipped batches only, 10 per reference), batches per reference, seconds per
    multivariate test)."""
    rng = np.random.default_rng([seed, rows, int(rho > 0)])
    settings = DriftSettings()
    flags: list[int] = []
    calls: list[int] = []
    judged: list[int] = []
    per_reference = max(1, batches // references)
    spent = 0.0
    for _ in range(references):
        flags.append(0)
        calls.append(0)
        judged.append(0)
        profile = build_profile(
            frame(rng, 5_000),
            ["kind"],
            None,
            False,
            statistics=settings.statistics,
            calibration_draws=settings.draws,
            multivariate=True,
        )
        for _ in range(per_reference):
            batch = frame(rng, rows, rho)
            started = time.perf_counter()
            test = multivariate_test(profile, batch, settings)
            spent += time.perf_counter() - started
            flags[-1] += bool(test and test.flag)
            if rho < 0 and judged[-1] < 10:  # the per-feature verdict, on 10 per reference
                calls[-1] += check_drift(profile, batch, settings).status == DriftStatus.DRIFT
                judged[-1] += 1
    return flags, (calls, judged), per_reference, spent / (per_reference * references)


def run(args: Any) -> None:
    smoke = bool(args.smoke)
    references = getattr(args, "references", None) or (2 if smoke else 20)
    clean_batches = getattr(args, "batches", None) or (20 if smoke else 10_000)
    power_batches = getattr(args, "batches", None) or (20 if smoke else 2_000)
    sizes = (100, 1_000) if smoke else (100, 1_000, 10_000, 100_000)
    jobs = [(n, 0.8, clean_batches if n < 100_000 else clean_batches // 10) for n in sizes]
    jobs.append((1_000, -0.8, power_batches))
    started = time.perf_counter()
    arguments = [(n, rho, b, references, args.seed) for n, rho, b in jobs]
    results = run_cells(run_cell, arguments, args)
    print(f"## Multivariate drift (issue 31){' — smoke sizes' if smoke else ''}\n")
    print(f"{references} references of 5,000 rows per cell; seed {args.seed}\n")
    print(
        "| batches | rows | correlation of f0, f1 | flagged [95%] | target | per-feature "
        "verdict called drift | test time |"
    )
    print("|---|---:|---|---|---|---|---:|")
    for (rows, rho, _b), (flags, calls, per_reference, seconds) in zip(jobs, results, strict=True):
        measured = ClusteredRate.of(flags, per_reference)
        clean = rho > 0
        target = "<= 1.0%" if clean else ">= 95%"
        met = measured.meets(0.01) if clean else measured.meets(0.95, power=True)
        verdict = "-" if clean else f"{sum(calls[0])} of {sum(calls[1])}"
        print(
            f"| {'clean' if clean else 'flipped'} | {rows:,} | {'0.8' if clean else '0.8 -> -0.8'}"
            f" | {measured.text()} | {target} "
            f"({'met' if met else 'NOT met'}) | {verdict} | {seconds * 1000:.1f} ms |"
        )
    print(f"\n_multivariate tables: {time.perf_counter() - started:.0f} s_")


if __name__ == "__main__":
    raise SystemExit(run_section(run, __doc__))
