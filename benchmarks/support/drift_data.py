"""The drift benchmarks' seeded data: 11 numeric and 2 categorical columns, and their drift.

Why: ``drift_bench.py`` (the check at 10k to 1M rows) and ``drift_pipeline.py`` (batches
larger than memory) measure on the same columns and samplers, so their figures compare.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from support.common import ROOT

DATA_DIR = ROOT / "var" / "bench-data"
DATA_VERSION = 1  # bump when the generator changes, so cached data is rebuilt
SEED = 20261124
NUMERIC = [f"num_{i:02d}" for i in range(11)]
CATEGORICAL = ["cat_a", "cat_b"]

Sampler = Callable[[np.random.Generator, int, bool], np.ndarray]

# One sampler per numeric column: (generator, rows, drifted) -> values. Drift is in num_00..02;
# num_07 moves a little, below every threshold, so "some change" is not always "drift".
SAMPLERS: dict[str, Sampler] = {
    "num_00": lambda g, n, d: g.normal(0.8 if d else 0.0, 1.0, n),
    "num_01": lambda g, n, d: g.normal(100.0, 24.0 if d else 15.0, n),
    "num_02": lambda g, n, d: g.lognormal(0.4 if d else 0.0, 0.5, n),
    "num_03": lambda g, n, d: g.exponential(2.0, n),
    "num_04": lambda g, n, d: g.uniform(-5.0, 5.0, n),
    "num_05": lambda g, n, d: g.gamma(2.0, 3.0, n),
    "num_06": lambda g, n, d: g.poisson(4.0, n).astype(float),
    "num_07": lambda g, n, d: g.beta(2.1 if d else 2.0, 5.0, n),
    "num_08": lambda g, n, d: g.standard_t(5.0, n),
    "num_09": lambda g, n, d: np.where(g.random(n) < 0.3, g.normal(-2, 0.5, n), g.normal(3, 1, n)),
    "num_10": lambda g, n, d: np.round(g.normal(50.0, 10.0, n), 2),
}
CAT_A_LEVELS = [f"a{i}" for i in range(5)]
CAT_B_LEVELS = [f"b{i:02d}" for i in range(30)]


def category_probabilities(column: str, drifted: bool) -> tuple[list[str], np.ndarray]:
    """Levels and their probabilities; the drifted cat_b gains a level the reference never saw."""
    if column == "cat_a":
        p = [0.20, 0.20, 0.15, 0.20, 0.25] if drifted else [0.40, 0.25, 0.15, 0.12, 0.08]
        return CAT_A_LEVELS, np.array(p)
    weights = 1.0 / np.arange(1, len(CAT_B_LEVELS) + 1)
    weights /= weights.sum()
    if not drifted:
        return CAT_B_LEVELS, weights
    return [*CAT_B_LEVELS, "b_new"], np.append(weights * 0.97, 0.03)


def make_frame(rows: int, drifted: bool, seed: int) -> pd.DataFrame:
    """One seeded frame; ``drifted`` applies the drift of the current batch."""
    rng = np.random.default_rng([seed, rows, int(drifted)])
    data: dict[str, Any] = {name: sample(rng, rows, drifted) for name, sample in SAMPLERS.items()}
    for name in CATEGORICAL:
        levels, p = category_probabilities(name, drifted)
        data[name] = np.array(levels, dtype=object)[rng.choice(len(levels), rows, p=p)]
    return pd.DataFrame(data)


def data_path(rows: int, part: str, data_dir: Path = DATA_DIR) -> Path:
    """Where one size's reference or current frame is cached."""
    return data_dir / f"v{DATA_VERSION}-seed{SEED}-rows{rows}" / f"{part}.parquet"


def ensure_data(rows: int, data_dir: Path = DATA_DIR) -> float:
    """Write reference and current once per size (cached by version and seed); return seconds."""
    start = time.perf_counter()
    for part, drifted in (("reference", False), ("current", True)):
        path = data_path(rows, part, data_dir)
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            staged = path.with_suffix(".part")
            make_frame(rows, drifted, SEED).to_parquet(staged, index=False)
            staged.replace(path)
    return time.perf_counter() - start


# the categorical shifts of the drift calibration (drift_calibration.py, decision tables)
def tilted(p: np.ndarray, distance: float) -> tuple[np.ndarray, float]:
    """``p`` tilted toward its rarer levels until the JS distance (base 2) equals ``distance``.

    ``q`` is proportional to ``p * exp(t * s)``, ``s`` rising from -1 (most frequent level) to
    1 (rarest); ``t`` is solved with Brent's method. Returns ``q`` and the distance reached.
    """
    from scipy.optimize import brentq
    from scipy.spatial.distance import jensenshannon

    score = np.linspace(-1.0, 1.0, p.size)

    def q(t: float) -> np.ndarray:
        weights = p * np.exp(t * score)
        return weights / weights.sum()

    t = brentq(lambda t: jensenshannon(p, q(t), base=2) - distance, 0.0, 20.0, xtol=1e-14)
    return q(t), float(jensenshannon(p, q(t), base=2))


def level_probabilities() -> dict[str, np.ndarray]:
    five = np.array([0.40, 0.25, 0.15, 0.12, 0.08])
    zipf = 1.0 / np.arange(1, 51)
    return {"cat5": five, "cat50": zipf / zipf.sum()}


CORRELATED_NUMERIC = [f"f{i}" for i in range(10)]


def correlated_frame(rng: np.random.Generator, rows: int, rho: float = 0.8) -> pd.DataFrame:
    """The multivariate sections' data (decision_tables_multivariate.py, multivariate_nannyml.py):
    ten numeric features, f0 and f1 correlated ``rho``, f9 lognormal, f3 with 10% missing, and a
    categorical tied to f2."""
    covariance = np.eye(10)
    covariance[0, 1] = covariance[1, 0] = rho
    values = rng.multivariate_normal(np.zeros(10), covariance, rows)
    data = pd.DataFrame(values, columns=CORRELATED_NUMERIC)
    data["f9"] = np.exp(data["f9"])  # a heavy right tail
    data["kind"] = np.where(
        values[:, 2] + rng.normal(size=rows) > 0, "a", rng.choice(["b", "c", "d"], rows)
    )
    data.loc[rng.random(rows) < 0.1, "f3"] = np.nan
    return data


def profile_with(reference: pd.DataFrame, categorical: list[str], settings: Any) -> Any:
    """``build_profile`` of ``reference`` with what ``settings`` (``DriftSettings``) say about
    statistics, calibration, the multivariate test and segments, as the sections that turn
    detectors on build it. driftloop is imported here, so a script that runs another checkout's
    driftloop in a child process imports this module without it."""
    from driftloop.drift.profile import build_profile

    return build_profile(
        reference,
        categorical,
        None,
        False,
        statistics=settings.statistics,
        calibration_draws=settings.draws,
        multivariate=settings.multivariate,
        segment_by=settings.segment_by,
        segment_min_rows=settings.segment_min_rows,
    )


def zipf_shares(levels: int) -> np.ndarray:
    """Level shares proportional to 1 / rank: a many-level column's long tail."""
    p = 1.0 / np.arange(1, levels + 1)
    return p / p.sum()


def label_sampler(p: np.ndarray) -> Callable[[np.random.Generator, int], np.ndarray]:
    """Draws of ``n`` labels ``L0``, ``L1``, ... with shares ``p``."""
    labels = np.array([f"L{i}" for i in range(p.size)], dtype=object)
    return lambda rng, n: labels[rng.choice(p.size, n, p=p)]
