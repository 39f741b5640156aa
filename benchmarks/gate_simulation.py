"""The gate's error rates on small holdouts, by seeded simulation (issue 16, items 1 and 4).

Why: the gate sends a challenger to Staging, which starts days of A/B traffic. On small
holdouts, how often does a challenger that is truly equal to Production (tolerance 0), or truly
worse by exactly the margin (tolerance 0.05), get there? Both are errors; each should happen in
at most about ``gate_alpha`` (0.05) of the holdouts. And how often does a truly better one
(the power)?

What: ``driftloop.gate.simulation`` draws paired per-row values with a known true
advantage and ``driftloop.gate.statistics.judge`` decides, exactly as the retrain DAG does:

- accuracy: each row falls in one of four cells (only the challenger right, only Production,
  both, neither); Production's accuracy 0.55 (the wine models'), and ``--discordance`` the
  share of rows where exactly one model is right (0.3 and 0.1 by default);
- MAE and RMSE: Production's per-row errors normal or Student-t with 5 degrees of freedom
  (heavy tails); the challenger's error on a row is Production's with probability 0.8, else
  an independent draw, scaled so that the true MAE and RMSE ratio is ``1 - advantage``.

Each line is ``--trials`` holdouts (default 2000: the standard error of a rate near 0.05 is
0.005). Pure numpy and scipy; about a minute on one core.

    .venv/bin/python benchmarks/gate_simulation.py [--trials 2000] [--seed 0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path

from support.common import add_smoke

from driftloop.config import TrainingSettings
from driftloop.gate.simulation import Scenario, outcome_rates
from driftloop.gate.statistics import GateOutcome

ROWS = (80, 100, 150, 300)
MARGIN = 0.05


def cases(discordances: list[float]) -> list[tuple[str, float, Scenario]]:
    """(what, tolerance, scenario) for every line of the table."""
    found = []
    for metric in ("accuracy", "mae", "rmse"):
        shapes = (
            [{"discordance": d} for d in discordances]
            if metric == "accuracy"
            else [{}, {"tails": 5.0}]
        )
        for shape in shapes:
            for rows in ROWS:
                for what, tolerance, advantage in (
                    ("equal", 0.0, 0.0),
                    (f"worse by {MARGIN}", MARGIN, -MARGIN),
                    ("better by 0.10", 0.0, 0.10),
                    ("better by 0.15", 0.0, 0.15),
                ):
                    if metric == "accuracy" and advantage > shape["discordance"]:
                        continue  # impossible: the models would have to disagree more often
                    found.append((what, tolerance, Scenario(metric, rows, advantage, **shape)))
    return found


def shape_of(scenario: Scenario) -> str:
    if scenario.metric == "accuracy":
        return f"discordance {scenario.discordance:g}"
    return "normal errors" if scenario.tails is None else f"t({scenario.tails:g}) errors"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--discordance", default="0.3,0.1")
    parser.add_argument("--json", type=Path)
    add_smoke(parser)
    args = parser.parse_args()
    if args.smoke:
        args.trials = 50
    discordances = [float(v) for v in args.discordance.split(",")]
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    print(
        f"# gate simulation: {args.trials} holdouts per line, "
        f"gate_alpha {args.alpha}, seed {args.seed}"
    )
    print(f"# {platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}")
    print(
        "| metric | errors / disagreement | true challenger | tolerance | rows "
        "| Staging | rejected | insufficient |"
    )
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    results = []
    for index, (what, tolerance, scenario) in enumerate(cases(discordances)):
        training = TrainingSettings(
            tolerance=tolerance, gate_alpha=args.alpha, min_holdout=min(ROWS)
        )
        rates = outcome_rates(scenario, training, args.trials, seed=args.seed + index)
        results.append(
            {
                "what": what,
                "tolerance": tolerance,
                "scenario": asdict(scenario),
                "rates": {str(k): v for k, v in rates.items()},
            }
        )
        print(
            f"| {scenario.metric} | {shape_of(scenario)} | {what} | {tolerance:g} "
            f"| {scenario.rows} "
            f"| {rates[GateOutcome.STAGING]:.3f} | {rates[GateOutcome.REJECTED]:.3f} "
            f"| {rates[GateOutcome.INSUFFICIENT_EVIDENCE]:.3f} |",
            flush=True,
        )
    elapsed = time.perf_counter() - started
    print(
        f"# {elapsed:.0f} s; load average (1 min) {load_before:.2f} at start, "
        f"{os.getloadavg()[0]:.2f} at end"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"trials": args.trials, "seed": args.seed, "alpha": args.alpha, "results": results},
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
