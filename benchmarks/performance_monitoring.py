"""Performance monitoring (issue 17): the drop test's false alarms and power, and the estimate
before labels (CBPE) against the realized accuracy over a stream like the demo's.

Why: a decay must mean a real drop (false alarms at ``monitoring.alpha`` per check on a healthy
model), planted drops must be found, and the estimate before labels must be close to what the
labels later say. Measured in one run, seeded:

(a) Drop test, accuracy: 250-row batches against a 500-row out-of-sample reference of accuracy
    0.85, at alpha 0.01 and 0.05; healthy batches (accuracy 0.85) and planted drops (0.80, 0.75,
    0.70). MAE: 250 |errors| against 400, the error scale healthy (x1) or grown (x1.2, x1.4).
(b) Estimate against realized on the wine stream: the configured data set (white wine) cut as
    the demo cuts it (reference split, then batches of ``stream.batch_size``), scenarios
    ``none``, ``gradual`` and ``concept``; a random forest (the demo's usual winner) fitted on the
    reference split, its reference cross-validated. Per batch: estimated and realized accuracy;
    the table gives the mean absolute error of the estimate, and how often the realized value
    fell inside the estimate's band (1 - 2 * alpha).

Usage: ``.venv/bin/python benchmarks/performance_monitoring.py [--runs 2000]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from support.common import ROOT, add_smoke

from driftloop.config import MonitoringSettings
from driftloop.performance.estimated import Calibrator, estimate_performance
from driftloop.performance.realized import drop_test
from driftloop.performance.reference import out_of_sample, predict_frame
from driftloop.settings_loader import load_settings
from driftloop.task import ACCURACY, MAE, labels


def accuracy_rates(runs: int, rng: np.random.Generator) -> list[tuple]:
    rows = []
    for alpha in (0.01, 0.05):
        monitoring = MonitoringSettings(alpha=alpha, min_drop=0.0)
        for now in (0.85, 0.80, 0.75, 0.70):
            alarms = 0
            for _ in range(runs):
                reference = (rng.random(500) < 0.85).astype(float)
                current = (rng.random(250) < now).astype(float)
                alarms += drop_test(current, reference, ACCURACY, monitoring).decayed
            rows.append(("accuracy", alpha, f"0.85 -> {now:.2f}", alarms / runs))
        for scale in (1.0, 1.2, 1.4):
            alarms = 0
            for _ in range(runs):
                reference = np.abs(rng.normal(0, 1.0, 400))
                current = np.abs(rng.normal(0, scale, 250))
                alarms += drop_test(current, reference, MAE, monitoring).decayed
            rows.append(("mae", alpha, f"error x{scale:g}", alarms / runs))
    return rows


def stream_estimates(home: Path, batches: int = 12) -> list[tuple]:
    from sklearn.ensemble import RandomForestClassifier

    from driftloop.ingestion.stream import replay, split_reference

    rows = []
    for scenario in ("none", "gradual", "concept"):
        settings = load_settings(ROOT / "driftloop.yaml", storage={"home": home / scenario})
        features, target = settings.feature_columns, settings.data.target
        reference_frame, _pool = split_reference(settings)
        forest = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1)
        forest.fit(reference_frame[features], reference_frame[target])
        reference = out_of_sample(forest, reference_frame, None, settings)
        calibrator = Calibrator(reference)
        accuracy = float(np.mean(reference.predictions == reference.truth))
        monitoring = settings.monitoring
        written = replay(settings, scenario, n_batches=batches)
        errors, inside, drops = [], 0, 0
        for batch in written:
            frame = pd.read_csv(batch.path, sep=settings.data.separator)
            predicted, probabilities = predict_frame(forest, frame[features], list(forest.classes_))
            realized = float(np.mean(predicted == labels(frame[target])))
            estimated = estimate_performance(
                calibrator, probabilities, accuracy, monitoring, predicted
            )
            band = estimated.metrics["accuracy"]
            errors.append(abs(band.value - realized))
            inside += band.low <= realized <= band.high
            drops += estimated.dropped
        rows.append(
            (
                scenario,
                len(written),
                accuracy,
                float(np.mean(errors)),
                float(np.max(errors)),
                inside / len(written),
                drops,
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--batches", type=int, default=12, help="stream batches per scenario")
    add_smoke(parser)
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.batches = 50, 3
    started = time.perf_counter()
    rng = np.random.default_rng(17)
    print(f"(a) drop test, {args.runs} batches per row (alpha: level of the one-sided test)")
    print("metric    alpha  case             alarm rate")
    for metric, alpha, case, rate in accuracy_rates(args.runs, rng):
        print(f"{metric:9} {alpha:<6g} {case:16} {rate:.4f}")
    with tempfile.TemporaryDirectory() as folder:
        print("\n(b) estimate (CBPE) against realized accuracy, white-wine stream, random forest")
        print("scenario  batches  reference  mean |est-real|  max |est-real|  in band  est. drops")
        for scenario, n, ref, mean, most, share, drops in stream_estimates(
            Path(folder), args.batches
        ):
            print(
                f"{scenario:9} {n:7}  {ref:9.4f}  {mean:15.4f}  "
                f"{most:14.4f}  {share:7.2f}  {drops:10}"
            )
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
