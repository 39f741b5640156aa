"""The retrain-storm table of benchmarks/decisions.py (issue 26, item 4).

Why: once a retrain has adapted the loop to a new distribution, batches from that distribution
should stop being called drift; otherwise every batch starts another retrain (a storm). This
replays the loop at the statistics level, with the library's own functions at every step:

- Production's training data starts as 1,500 rows of P (the wine columns' names, standard
  normals, a 3-class target); batches of 250 rows (``stream.batch_size``), labelled on arrival;
- 5 batches of P, then the change: 4 of the 11 features (30%+) move by +0.5 sd, either at once
  (sudden) or linearly over 10 batches, then hold (ramp); then 40 batches of Q are counted;
- each batch is tested with ``check_drift`` against the Production version's profile; a drift
  verdict starts a retrain at once (cooldown 0) that is promoted before the next batch (the gate
  and the A/B test are assumed to pass): ``split_holdout`` on the newest
  ``training.window_batches`` batches and Production's training data gives the new training
  set; the new reference is built as the product builds it (``reference_rows``, else the
  training set) or, for "before", as it was built until now (the training set: a mixture);
  ``profile_from_frame`` profiles it. The loop keeps running while batches are counted, so an
  alarm there is a real extra retrain.

Counted: batches of Q (after the ramp) checked after the first promoted retrain that followed
the change; the rate is the share of them called drift (target at most 5%). Batches of one
stream share their reference, so the 95% interval is Clopper-Pearson on the Kish effective
sample size (the count divided by the design effect measured between streams).
"""

from __future__ import annotations

import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from support.decisions import ClusteredRate, section_parser

from driftloop.config import Settings
from driftloop.drift.engine import check_drift
from driftloop.drift.profile import ReferenceProfile
from driftloop.settings_loader import load_settings
from driftloop.stages.reference_profiles import profile_from_frame
from driftloop.stages.training_data import reference_rows, split_holdout

ROOT = Path(__file__).resolve().parents[1]
SHIFT, SHIFTED, BATCH_ROWS, BASE_ROWS = 0.5, 4, 250, 1_500
PRE, RAMP, COUNTED = 5, 10, 40
TARGET = 0.05


@dataclass(frozen=True)
class StreamResult:
    """One replayed stream: counted batches, how many were called drift, retrains in all."""

    counted: int
    called: int
    retrains: int


def storm_settings() -> Settings:
    """The shipped configuration (driftloop.yaml): its drift and training defaults."""
    return load_settings(ROOT / "driftloop.yaml")


def draw_rows(settings: Settings, rng: np.random.Generator, n: int, shift: float) -> pd.DataFrame:
    """``n`` rows: the features standard normals, the first ``SHIFTED`` moved by ``shift`` sd."""
    values = rng.standard_normal((n, len(settings.feature_columns)))
    values[:, :SHIFTED] += shift
    frame = pd.DataFrame(values, columns=settings.feature_columns)
    frame[settings.data.target] = rng.choice([5, 6, 7], n, p=[0.3, 0.45, 0.25])
    return frame


def new_reference(
    settings: Settings,
    recent: pd.DataFrame,
    base: pd.DataFrame,
    drift_time: pd.Timestamp,
    mixture: bool,
) -> tuple[pd.DataFrame, ReferenceProfile]:
    """What a promoted retrain leaves: its training set (the next base) and its profile,
    from the product's ``split_holdout`` and ``reference_rows`` (``mixture``: as before)."""
    train_frame, _holdout = split_holdout(recent, base, drift_time, settings)
    rows = None if mixture else reference_rows(recent, drift_time, settings)
    reference = train_frame if rows is None else rows
    return train_frame, profile_from_frame(reference, settings, "retrain")


def replay(
    settings: Settings, ramp: bool, mixture: bool, seed: list[int], counted_max: int = COUNTED
) -> StreamResult:
    """One stream through the loop, ``counted_max`` batches counted; see the module's docstring."""
    rng = np.random.default_rng(seed)
    base = draw_rows(settings, rng, BASE_ROWS, 0.0)
    profile = profile_from_frame(base, settings, "bootstrap")
    change = RAMP if ramp else 1
    shifts = [0.0] * PRE + [SHIFT * (i + 1) / change for i in range(change)]
    shifts += [SHIFT] * (counted_max + 1)  # one spare: the sudden change's first batch may alarm
    start = pd.Timestamp("2026-01-01", tz="UTC")
    batches: list[pd.DataFrame] = []
    counted = called = retrains = 0
    adapted = False
    for index, shift in enumerate(shifts):
        batch = draw_rows(settings, rng, BATCH_ROWS, shift)
        batches.append(batch.assign(_batch_time=start + pd.Timedelta(hours=index)))
        drifted = check_drift(profile, batch, settings.drift).drifted
        settled = adapted and index >= PRE + change
        if settled and counted < counted_max:
            counted += 1
            called += drifted
        if drifted:
            recent = pd.concat(batches[-settings.training.window_batches :], ignore_index=True)
            drift_time = batches[-1]["_batch_time"].iloc[0]
            base, profile = new_reference(settings, recent, base, drift_time, mixture)
            retrains += 1
            adapted = adapted or index >= PRE
    return StreamResult(counted, called, retrains)


def run_storm(args: Any) -> None:
    """Print the storm table (Markdown): before (mixture reference) and after, per scenario."""
    smoke = bool(args.smoke)
    settings = storm_settings()
    # full size: 1,000 counted batches after (25 streams), 200 before (5 streams: each retrains
    # about ten times, on a training set that grows); ``--references`` sets the streams after
    after = getattr(args, "references", None) or 25
    given = getattr(args, "references", None)
    counts = 10 if smoke else COUNTED
    streams = {False: (given or 1) if smoke else after, True: 1 if smoke else max(1, after // 5)}
    started = time.perf_counter()
    print("### No retrain storm: batches of the new distribution called drift after a retrain\n")
    print(
        f"{BASE_ROWS:,} training rows of P, batches of {BATCH_ROWS}, 4 of 11 features +{SHIFT}"
        f" sd; {counts} batches of Q counted per stream; seed {args.seed}\n"
    )
    print("| change | new version's reference | streams | batches | called drift [95%] |", end="")
    print(" retrains per stream | target | |")
    print("|---|---|---:|---:|---|---:|---:|---|")
    for ramp in (False, True):
        for mixture in (True, False):
            jobs = [
                (
                    settings,
                    ramp,
                    mixture,
                    [args.seed, zlib.crc32(f"storm|{ramp}".encode()), i],
                    counts,
                )
                for i in range(streams[mixture])
            ]
            if args.workers > 1:
                with ProcessPoolExecutor(args.workers) as pool:
                    results = list(pool.map(replay, *zip(*jobs, strict=True)))
            else:
                results = [replay(*job) for job in jobs]
            measured = ClusteredRate.of([r.called for r in results], [r.counted for r in results])
            rate, lower, upper = measured.rate, measured.lower, measured.upper
            ok = measured.meets(TARGET)
            print(
                f"| {'ramp over 10 batches' if ramp else 'sudden'} | "
                f"{'training set (before)' if mixture else 'rows since the drift (now)'} | "
                f"{len(results)} | {sum(r.counted for r in results):,} | "
                f"{rate:.1%} [{lower:.1%}, {upper:.1%}] | "
                f"{np.mean([r.retrains for r in results]):.1f} | <= {TARGET:.0%} | "
                f"{'met' if ok else 'NOT met'} |",
                flush=True,
            )
    print(f"\n_storm table: {time.perf_counter() - started:.0f} s_")


def main(argv: list[str] | None = None) -> int:
    """This section alone (``decisions.py`` runs every section with the same options)."""
    run_storm(section_parser(__doc__.splitlines()[0]).parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
