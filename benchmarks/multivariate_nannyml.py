"""The multivariate drift test beside NannyML's (issue 31, item 1 and 6: "NannyML side by side
where they have the same method").

Why: NannyML's ``DataReconstructionDriftCalculator`` is the same idea as driftloop's multivariate
test (PCA fitted on the reference, reconstruction error of a batch): side by side on the same
batches, their false alarms and power can be read together. Data and sizes are those of
``decision_tables_multivariate.py``: ten numeric features (f0, f1 correlated 0.8, f3 with 10%
missing, f9 lognormal) and a categorical, references of 5,000 rows, batches of 1,000 rows, clean
(correlation 0.8) and flipped (f0, f1 to -0.8, marginals kept).

NannyML runs in its own virtualenv (its pins clash with the project's lock), created as
Evidently's is::

    .venv/bin/uv venv --python python3.11 var/bench-nannyml-venv
    .venv/bin/uv pip sync --python var/bench-nannyml-venv/bin/python \\
        benchmarks/requirements-nannyml.txt

NannyML with its defaults (65% of the variance kept, mean / most-frequent imputation, alert
outside the reference chunks' mean +- 3 sd), except ``chunk_size``: the batch size, so that each
batch is one chunk with one alert, and the 5,000-row reference gives the 5 chunks its threshold
is drawn from. driftloop: ``multivariate_test`` with the default settings (level half of 1%).
Reference and batches go to the child as Parquet files in a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

VENV = Path(__file__).resolve().parent.parent / "var" / "bench-nannyml-venv" / "bin" / "python"
ROWS = 1_000


def child(folder: Path, references: int) -> None:
    """In NannyML's virtualenv: one alert per batch (chunk), per reference, as JSON."""
    import nannyml
    import pandas as pd

    alerts = []
    for index in range(references):
        reference = pd.read_parquet(folder / f"reference_{index}.parquet")
        batches = pd.read_parquet(folder / f"batches_{index}.parquet")
        calculator = nannyml.DataReconstructionDriftCalculator(
            column_names=list(reference.columns), chunk_size=ROWS
        )
        calculator.fit(reference)
        result = calculator.calculate(batches).filter(period="analysis").to_df()
        alerts.append([bool(a) for a in result[("reconstruction_error", "alert")]])
    print(json.dumps({"version": nannyml.__version__, "alerts": alerts}))


def run(args: argparse.Namespace) -> None:
    import numpy as np
    import pandas as pd
    from support.decisions import interval
    from support.drift_data import correlated_frame as frame

    from driftloop.config import DriftSettings
    from driftloop.drift.engine import multivariate_test
    from driftloop.drift.profile import build_profile

    smoke = bool(args.smoke)
    references = args.references or (2 if smoke else 20)
    per_reference = max(1, (args.batches or (10 if smoke else 1_000)) // references)
    settings = DriftSettings()
    started = time.perf_counter()
    table = {}
    for rho in (0.8, -0.8):
        rng = np.random.default_rng([args.seed, int(rho > 0)])
        ours = []
        with tempfile.TemporaryDirectory(prefix="i31-nannyml-") as folder:
            for index in range(references):
                reference = frame(rng, 5_000)
                profile = build_profile(
                    reference,
                    ["kind"],
                    None,
                    False,
                    statistics=settings.statistics,
                    calibration_draws=settings.draws,
                    multivariate=True,
                )
                batches = [frame(rng, ROWS, rho) for _ in range(per_reference)]
                ours += [bool(multivariate_test(profile, b, settings).flag) for b in batches]
                reference.to_parquet(Path(folder) / f"reference_{index}.parquet")
                pd.concat(batches, ignore_index=True).to_parquet(
                    Path(folder) / f"batches_{index}.parquet"
                )
            command = [str(VENV), __file__, "--child", folder, "--references", str(references)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode:
                raise SystemExit(f"NannyML's child failed:\n{done.stderr}")
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        theirs = [a for alerts in answer["alerts"] for a in alerts]
        table[rho] = (ours, theirs, answer["version"])
    print(f"## Multivariate drift beside NannyML (issue 31){' — smoke sizes' if smoke else ''}\n")
    print(
        f"{references} references of 5,000 rows, {per_reference} batches of {ROWS:,} rows each; "
        f"seed {args.seed}; NannyML {table[0.8][2]}\n"
    )
    print("| batches | target | driftloop flagged [95%] | NannyML reconstruction drift [95%] |")
    print("|---|---|---|---|")
    for rho, (ours, theirs, _v) in table.items():
        cells = []
        for flags in (ours, theirs):
            k, n = sum(flags), len(flags)
            lower, upper = interval(k, n)
            cells.append(f"{k / n:.2%} [{lower:.2%}, {upper:.2%}] of {n:,}")
        kind = "clean (0.8)" if rho > 0 else "flipped (0.8 -> -0.8)"
        target = "<= 1%" if rho > 0 else ">= 95%"
        print(f"| {kind} | {target} | {cells[0]} | {cells[1]} |")
    print(f"\n_NannyML side by side: {time.perf_counter() - started:.0f} s_")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it runs")
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--batches", type=int, help="batches per kind (clean, flipped)")
    parser.add_argument("--references", type=int)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child), args.references)
        return 0
    if not VENV.exists():
        if args.smoke:
            print("smoke: skipping NannyML (it needs its separate virtualenv)", flush=True)
            return 0
        print(f"NannyML's virtualenv is missing: {VENV} (see this script's docstring)")
        return 1
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
