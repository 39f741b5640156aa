"""The calibration benchmark's data: clean populations, planted-shift cells and seeded draws.

Why: driftloop's checks (in worker processes) and Evidently's plan (files for its child
process) must draw the very same references and batches, so both take them from here: one
place for the data sets, the generated columns, the seeds of every draw and a run's work
directory (``drift_calibration.py``, issue 12).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from support.common import ROOT
from support.drift_data import level_probabilities, tilted

WORK_DIR = ROOT / "var" / "bench-calibration"
WINE = ROOT / "data" / "wine" / "winequality-white.csv"

REFERENCE_SHARE = 0.3  # wine: share of the deduplicated rows in each reference
DRAWN_REFERENCE_ROWS = 1_500  # cancer, diabetes: rows drawn (with replacement) per reference
REFERENCE_EVERY = 10  # power cells: a new reference every this many batches
JS_TARGET = 0.1
MISSING_SHARE = 0.01

Sampler = Callable[[np.random.Generator, int], np.ndarray]


# ------------------------------------------------------------------------ false-alarm data


@dataclass(frozen=True)
class Population:
    """A data set for the false-alarm table and how references and batches come from it."""

    name: str
    frame: pd.DataFrame
    categorical: list[str]
    split: bool  # True: reference and rest disjoint; False: drawn with replacement
    reference_rows: int

    def rows(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(reference rows, rows batches come from) of one split."""
        size = len(self.frame)
        if self.split:
            order = rng.permutation(size)
            return np.sort(order[: self.reference_rows]), order[self.reference_rows :]
        return rng.integers(0, size, self.reference_rows), np.arange(size)

    def batch(self, rest: np.ndarray, rng: np.random.Generator, rows: int) -> np.ndarray:
        if self.split:
            return rest[rng.choice(rest.size, rows, replace=False)]
        return rest[rng.integers(0, rest.size, rows)]


def load_wine() -> Population:
    """White wine, features only, duplicate rows dropped; references are disjoint splits."""
    frame = pd.read_csv(WINE, sep=";").drop_duplicates().drop(columns="quality")
    frame = frame.reset_index(drop=True)
    return Population("wine", frame, [], True, round(REFERENCE_SHARE * len(frame)))


def load_cancer(seed: int) -> Population:
    """Breast cancer plus a categorical ``grade`` and 1% missing values: mixed types."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).data.copy()
    rng = np.random.default_rng([seed, 11])
    radius = frame["mean radius"].to_numpy()
    noisy = (radius - radius.mean()) / radius.std() + rng.normal(0.0, 0.5, radius.size)
    cuts = np.quantile(noisy, [0.1, 0.3, 0.6, 0.85])
    levels = np.array([f"G{i}" for i in range(1, 6)], dtype=object)
    frame["grade"] = levels[np.searchsorted(cuts, noisy)]
    frame = frame.astype({"grade": object})
    mask = rng.random(frame.shape) < MISSING_SHARE
    frame = frame.mask(mask)
    return Population("cancer", frame, ["grade"], False, DRAWN_REFERENCE_ROWS)


def load_diabetes_set() -> Population:
    """Diabetes, unscaled: ``sex`` has two values, so ties are heavy."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).data.copy()
    return Population("diabetes", frame, [], False, DRAWN_REFERENCE_ROWS)


def populations(seed: int) -> list[Population]:
    """The false-alarm table's three data sets, in its order."""
    return [load_wine(), load_cancer(seed), load_diabetes_set()]


def split_rng(seed: int, data: int, split: int) -> np.random.Generator:
    """The draw of one reference: keyed by position, so driftloop and Evidently agree."""
    return np.random.default_rng([seed, 1, data, split])


def batch_rng(seed: int, data: int, rows: int, batch: int) -> np.random.Generator:
    """The draw of one clean batch: keyed by position, as ``split_rng``."""
    return np.random.default_rng([seed, 2, data, rows, batch])


# ------------------------------------------------------------------------------ power data


@dataclass(frozen=True)
class Column:
    """A generated column: how the reference and the batch draw it."""

    name: str
    reference: Sampler
    batch: Sampler
    shift: str = ""  # what was planted; empty: an unshifted twin
    categorical: bool = False


@dataclass(frozen=True)
class PowerCell:
    """One row group of the power table: batches of ``rows`` against ``reference_rows``."""

    key: str
    title: str
    rows: int
    reference_rows: int
    columns: list[Column]
    batches: int
    dataset_verdict: bool = False
    evidently_cap: int | None = None
    evidently_reports: bool = True

    @property
    def categorical(self) -> list[str]:
        return [c.name for c in self.columns if c.categorical]

    def frame(self, rng: np.random.Generator, reference: bool) -> pd.DataFrame:
        rows = self.reference_rows if reference else self.rows
        return pd.DataFrame(
            {c.name: (c.reference if reference else c.batch)(rng, rows) for c in self.columns}
        )


def normal(mean: float = 0.0, sd: float = 1.0) -> Sampler:
    """A normal column's sampler."""
    return lambda rng, n: rng.normal(mean, sd, n)


def lognormal(sigma: float) -> Sampler:
    """A lognormal column's sampler (skewed, positive)."""
    return lambda rng, n: rng.lognormal(0.0, sigma, n)


def poisson(mean: float) -> Sampler:
    """A Poisson column's sampler (counts, as floats: heavy ties)."""
    return lambda rng, n: rng.poisson(mean, n).astype(float)


def categorical(p: np.ndarray, prefix: str) -> Sampler:
    """A categorical column's sampler: levels ``<prefix>00``, ``<prefix>01``... drawn by ``p``."""
    labels = np.array([f"{prefix}{i:02d}" for i in range(p.size)], dtype=object)
    return lambda rng, n: labels[rng.choice(p.size, n, p=p)]


VERDICT: dict[str, Any] = {"dataset_verdict": True}


def power_cells(batches: int, million_batches: int) -> tuple[list[PowerCell], dict[str, float]]:
    """The power table's cells and the JS distances the categorical shifts reach."""
    shifted, reached = [], {}
    for name, p in level_probabilities().items():
        q, reached[name] = tilted(p, JS_TARGET)
        shifted.append(
            Column(
                name,
                categorical(p, name[3:] + "L"),
                categorical(q, name[3:] + "L"),
                f"{p.size} levels, JS {reached[name]:.3f}",
                True,
            )
        )
        clean = categorical(p, name[3:] + "L")
        shifted.append(Column(f"{name}_clean", clean, clean, "", True))
    one_each = [
        Column("normal_mean", normal(), normal(0.25), "normal, mean +0.25 sd"),
        Column("normal_sd", normal(), normal(0.0, 1.2), "normal, sd x1.2"),
        Column("lognormal", lognormal(0.5), lognormal(0.6), "lognormal, sigma 0.5 to 0.6"),
        Column("poisson", poisson(2.0), poisson(2.35), "Poisson, mean 2 to 2.35"),
        *shifted,
        Column("normal_clean", normal(), normal()),
        Column("lognormal_clean", lognormal(0.5), lognormal(0.5)),
        Column("poisson_clean", poisson(2.0), poisson(2.0)),
    ]
    small = [
        Column("normal_mean", normal(), normal(0.5), "normal, mean +0.5 sd"),
        *[Column(f"normal_clean_{i}", normal(), normal()) for i in range(4)],
    ]

    def ten(shift: float) -> list[Column]:
        return [
            *[
                Column(f"shifted_{i}", normal(), normal(shift), f"normal, mean +{shift} sd")
                for i in range(3)
            ],
            *[Column(f"clean_{i}", normal(), normal()) for i in range(7)],
        ]

    trivia = [
        Column("normal_mean", normal(), normal(0.05), "normal, mean +0.05 sd"),
        Column("normal_clean", normal(), normal()),
    ]
    cells = [
        PowerCell("one_each_5000", "one shift per feature", 5_000, 5_000, one_each, batches),
        PowerCell("one_250", "mean shift at 250 rows", 250, 5_000, small, batches),
        PowerCell("dataset_5000", "3 of 10 shifted", 5_000, 5_000, ten(0.25), batches, **VERDICT),
        PowerCell("dataset_250", "3 of 10 shifted", 250, 5_000, ten(0.5), batches, **VERDICT),
        PowerCell(
            "trivia_1m",
            "a trivial mean shift",
            1_000_000,
            1_000_000,
            trivia,
            million_batches,
            evidently_cap=3,  # each 1M-row batch costs Evidently seconds and a GiB
            evidently_reports=False,  # a full Report at 1M rows: a minute and more per batch
        ),
    ]
    return cells, reached


def power_rng(seed: int, cell: int, kind: int, index: int) -> np.random.Generator:
    """A power cell's draw (kind 0: a reference, 1: a batch), keyed by position."""
    return np.random.default_rng([seed, 3, cell, kind, index])


# ------------------------------------------------------------------------- a run's work files


def run_dir(args: argparse.Namespace) -> Path:
    """The work files of one run configuration (a quick run leaves a full one's alone)."""
    sizes = "-".join(map(str, args.sizes))
    name = f"s{args.seed}-b{args.batches}-r{args.splits}-n{sizes}"
    name += f"-p{args.power_batches}-m{args.million_batches}-e{args.evidently_batches}"
    return WORK_DIR / name
