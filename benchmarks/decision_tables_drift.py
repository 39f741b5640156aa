"""The drift section of benchmarks/decisions.py (issue 26): false alarms and power, as a user.

Why: the drift check promises ``drift.false_alarm_rate`` per feature and a batch verdict that
starts retrains. Every cell here builds profiles with the library's own ``build_profile`` and
tests batches with ``check_drift`` and default ``DriftSettings`` (or one statistic alone, floor
0), on production shapes: categoricals of 2 to 10,000 levels, heavy tails, degenerate columns,
a rare predicted class, and streams of 1 to 100 features: equicorrelated normals, the white
wine's 11 columns, and 3 to 30 features of those shapes together. Each cell draws its batches across
several references (the reference's own sampling error is part of the rate a user sees).

A false-alarm cell meets its target when the estimate is at most the target and the 95% upper
bound at most 1.3x the target; a power cell when the estimate is at least the target and the
lower bound at least the target minus its distance to 1, times 1.3. The interval is
Clopper-Pearson at the effective size (Korn and Graubard, ``ClusteredRate``): the batches
of one reference share its sampling error, so where a few references carry the flags the
table shows the design effect and the most one reference flagged, and the interval widens.

Full size (the issue's): 2,000 batches per cell (10,000 where the target is 1% or less) across
20 references; ``--smoke`` runs every table with a few batches (well under a minute). The
retrain-storm table (item 4) is in ``decision_tables_storm.py``, which decisions.py runs after
these.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from support.chunks import depends_on
from support.decisions import ClusteredRate, run_cells, run_section, show_reference
from support.drift_data import (
    label_sampler,
    level_probabilities,
    profile_with,
    tilted,
    zipf_shares,
)

from driftloop.config import DriftSettings
from driftloop.drift.engine import check_drift
from driftloop.vocabulary import DriftStatus

Sampler = Callable[[np.random.Generator, int], np.ndarray]


@dataclass(frozen=True)
class Cell:
    """One table row: a reference shape and a batch shape, sizes, settings and target."""

    table: str
    label: str
    reference: tuple[Any, ...]  # sampler spec (see ``sampler``)
    batch: tuple[Any, ...]
    reference_rows: int
    batch_rows: int
    target: float
    power: bool = False
    statistic: str = ""  # one statistic alone (floor 0); empty: the default settings
    features: int = 1  # stream cells: features per batch
    rho: float = 0.0  # stream cells: equicorrelation of the features
    shifted: int = 0  # stream cells: features shifted in the batch
    extra: dict[str, float] = field(default_factory=dict)
    data: str = "normal"  # stream cells: "normal" (equicorrelated), "wine" or "shapes"


def _tilted(levels: int) -> np.ndarray:
    """The 5- and 50-level shifts of the last calibration (JS 0.1; drift_calibration.py)."""
    return tilted(level_probabilities()[f"cat{levels}"], 0.1)[0]


def sampler(spec: tuple[Any, ...]) -> tuple[Sampler, bool]:
    """A sampler from its spec, and whether its column is categorical."""
    kind, *args = spec
    if kind == "zipf":
        return label_sampler(zipf_shares(args[0])), True
    if kind == "uniform":
        return label_sampler(np.full(args[0], 1.0 / args[0])), True
    if kind == "five":
        return label_sampler(np.array([0.40, 0.25, 0.15, 0.12, 0.08])), True
    if kind == "fifty":
        return label_sampler(zipf_shares(50)), True
    if kind == "tilted":
        return label_sampler(_tilted(args[0])), True
    if kind == "new_level":  # a base shape with one new level at share args[1]
        base, _ = sampler(args[0])
        share = args[1]

        def draw(rng: np.random.Generator, n: int) -> np.ndarray:
            new = round(share * n)
            return np.concatenate((base(rng, n - new), np.full(new, "NEW", dtype=object)))

        return draw, True
    if kind == "classes":  # predicted classes with these probabilities
        p = np.asarray(args, dtype=float)
        names = np.array(["a", "b", "rare"], dtype=object)[: p.size]
        return lambda rng, n: names[rng.choice(p.size, n, p=p)], True
    numeric: dict[str, Sampler] = {
        "lognormal": lambda rng, n: rng.lognormal(0.0, args[0], n),
        "pareto": lambda rng, n: rng.pareto(args[0], n),
        "binary": lambda rng, n: (rng.random(n) < args[0]).astype(float),
        "constant": lambda rng, n: np.zeros(n),
        "tied": lambda rng, n: rng.poisson(args[0], n).astype(float),
        "normal": lambda rng, n: rng.normal(args[0] if args else 0.0, 1.0, n),
    }
    return numeric[kind], False


def _settings(cell: Cell) -> DriftSettings:
    if cell.statistic:
        return DriftSettings(statistics=[cell.statistic], effect_floor={cell.statistic: 0.0})
    return DriftSettings()


def _stream_frame(cell: Cell, rng: np.random.Generator, n: int, shift: float) -> pd.DataFrame:
    """``cell.features`` standard normals, equicorrelated (rho), the first ``cell.shifted``
    moved by ``shift`` sd."""
    common = rng.standard_normal((n, 1))
    own = rng.standard_normal((n, cell.features))
    values = np.sqrt(cell.rho) * common + np.sqrt(1.0 - cell.rho) * own
    values[:, : cell.shifted] += shift
    return pd.DataFrame(values, columns=[f"f{i}" for i in range(cell.features)])


WINE = Path(__file__).resolve().parents[1] / "data" / "wine" / "winequality-white.csv"
WINE_REFERENCE_SHARE = 0.3  # as drift_calibration.py: the reference, the rest for batches
SHAPES: list[tuple[Any, ...]] = [  # items 1-2's shapes, cycled over a stream's features
    ("zipf", 2_000),
    ("lognormal", 2.0),
    ("binary", 0.01),
    ("pareto", 2.5),
    ("uniform", 50),
    ("tied", 0.3),
    ("constant",),
    ("zipf", 500),
    ("lognormal", 1.5),
    ("normal",),
]
BatchDraw = Callable[[int, float], pd.DataFrame]


@cache
def _wine() -> pd.DataFrame:
    frame = pd.read_csv(depends_on(WINE), sep=";").drop_duplicates().drop(columns="quality")
    return frame.reset_index(drop=True)


def _stream_source(
    cell: Cell, rng: np.random.Generator
) -> tuple[pd.DataFrame, list[str], BatchDraw]:
    """A stream cell's reference, its categorical columns, and how its batches are drawn
    (``draw(rows, shift)``: the first ``cell.shifted`` features moved by ``shift`` sd; the
    wine and shapes streams are clean cells only and draw unshifted batches)."""
    if cell.data == "wine":  # a random split: the reference, and batches from the rest
        frame = _wine()
        order = rng.permutation(len(frame))
        cut = round(WINE_REFERENCE_SHARE * len(frame))
        rest = order[cut:]

        def wine_batch(rows: int, shift: float) -> pd.DataFrame:
            return frame.iloc[rest[rng.choice(rest.size, rows, replace=False)]]

        return frame.iloc[np.sort(order[:cut])], [], wine_batch
    if cell.data == "shapes":
        columns = [(f"f{i}", *sampler(SHAPES[i % len(SHAPES)])) for i in range(cell.features)]

        def shapes_frame(rows: int, shift: float) -> pd.DataFrame:
            return pd.DataFrame({name: draw(rng, rows) for name, draw, _ in columns})

        categorical = [name for name, _, is_categorical in columns if is_categorical]
        return shapes_frame(cell.reference_rows, 0.0), categorical, shapes_frame
    return (
        _stream_frame(cell, rng, cell.reference_rows, 0.0),
        [],
        lambda rows, shift: _stream_frame(cell, rng, rows, shift),
    )


def run_cell(cell: Cell, batches: int, references: int, seed: int) -> tuple[list[int], int]:
    """Batches flagged (a feature flagged, or the stream called drift) per reference, and the
    batches each reference was tested with."""
    rng = np.random.default_rng(
        [seed, zlib.crc32(f"{cell.table}|{cell.label}".encode()), cell.batch_rows]
    )
    settings = _settings(cell)
    flagged: list[int] = []
    per_reference = max(1, batches // references)
    for _ in range(references):
        flagged.append(0)
        if cell.features > 1 or cell.table.startswith("stream"):
            reference, categorical, draw_batch = _stream_source(cell, rng)
        else:
            draw, is_categorical = sampler(cell.reference)
            reference = pd.DataFrame({"x": draw(rng, cell.reference_rows)})
            categorical = ["x"] if is_categorical else []
        profile = profile_with(reference, categorical, settings)
        for _ in range(per_reference):
            if cell.features > 1 or cell.table.startswith("stream"):
                frame = draw_batch(cell.batch_rows, cell.extra.get("shift", 0.0))
                flagged[-1] += check_drift(profile, frame, settings).status == DriftStatus.DRIFT
            else:
                draw, _ = sampler(cell.batch)
                frame = pd.DataFrame({"x": draw(rng, cell.batch_rows)})
                flagged[-1] += check_drift(profile, frame, settings).features[0].drifted
        show_reference(f"{cell.table}: {cell.label}", flagged, references, per_reference)
    return flagged, per_reference


FALSE_ALARM, POWER = 0.015, 0.95


def _categorical_cells(smoke: bool) -> list[Cell]:
    if smoke:
        grid = [("zipf", 500, 2_000, 500), ("uniform", 2, 500, 30)]
    else:
        sizes = [(500, 30), (2_000, 500), (1_000, 5_000), (100_000, 1_000), (5_000, 100_000)]
        grid = [
            (shape, levels, n_ref, n)
            for shape in ("zipf", "uniform")
            for levels in (2, 50, 500, 2_000, 10_000)
            for n_ref, n in sizes
        ]
    return [
        Cell("categorical", f"{shape}, {k} levels", (shape, k), (shape, k), n_ref, n, FALSE_ALARM)
        for shape, k, n_ref, n in grid
    ]


def _power_cells(smoke: bool) -> list[Cell]:
    cells = [
        Cell("power", "5 levels, JS 0.1", ("five",), ("tilted", 5), 5_000, 5_000, POWER, True),
        Cell("power", "50 levels, JS 0.1", ("fifty",), ("tilted", 50), 5_000, 5_000, POWER, True),
    ]
    bases = [("zipf", 5)] if smoke else [("zipf", 5), ("zipf", 2_000), ("uniform", 10_000)]
    for base in bases:
        for n_ref in (500,) if smoke else (500, 100_000):
            cells.append(
                Cell(
                    "power",
                    f"new level at 5%, {base[0]} {base[1]} levels",
                    base,
                    ("new_level", base, 0.05),
                    n_ref,
                    1_000,
                    POWER,
                    True,
                )
            )
    rare, risen = ("classes", 0.6, 0.39, 0.01), ("classes", 0.57, 0.38, 0.05)
    cells.append(
        Cell("power", "prediction: rare class 1% -> 5%", rare, risen, 3_000, 1_000, POWER, True)
    )
    cells.append(
        Cell(
            "power",
            "prediction: a class never predicted, at 5%",
            rare,
            ("new_level", ("classes", 0.6, 0.39, 0.01), 0.05),
            3_000,
            1_000,
            POWER,
            True,
        )
    )
    cells.append(Cell("power", "prediction: rare class 1%, clean", rare, rare, 3_000, 1_000, 0.015))
    return cells


def _numeric_cells(smoke: bool) -> list[Cell]:
    shapes = [
        ("lognormal", 2.0),
        ("lognormal", 1.5),
        ("pareto", 2.5),
        ("binary", 0.01),
        ("constant",),
        ("tied", 0.3),
    ]
    statistics = ["mean_shift", "wasserstein", "jensen_shannon", ""]
    sizes = [
        (1_000, 30),
        (1_000, 100_000),
        (20_000, 1_000),
        (20_000, 3_000),
        (100_000, 30_000),  # an unbalanced split of a large pool (its extremes decide)
        (100_000, 100_000),
    ]
    if smoke:
        shapes, statistics, sizes = (
            [("lognormal", 2.0), ("binary", 0.01)],
            ["wasserstein"],
            [(1_000, 5_000)],
        )
    return [
        Cell(
            "numeric",
            f"{' '.join(map(str, shape))}, {statistic or 'default settings'}",
            shape,
            shape,
            n_ref,
            n,
            FALSE_ALARM,
            statistic=statistic,
        )
        for shape in shapes
        for statistic in statistics
        for n_ref, n in sizes
    ]


def _clean_stream(label: str, reference_rows: int, rows: int, features: int, **kw: Any) -> Cell:
    """A clean stream cell: batches called drift, against the 1% per batch."""
    return Cell(
        "stream",
        label,
        ("normal",),
        ("normal",),
        reference_rows,
        rows,
        0.01,
        features=features,
        **kw,
    )


def _stream_cells(smoke: bool) -> list[Cell]:
    features = (1, 3) if smoke else (1, 3, 10, 30, 100)
    cells = [
        _clean_stream(f"{m} features, rho {rho}", 5_000, 1_000, m, rho=rho)
        for m in features
        for rho in ((0.0,) if smoke else (0.0, 0.5, 0.9))
    ]
    # the white wine's 11 columns (a reference of 30% of its rows, batches from the rest), and
    # streams of items 1-2's shapes (many-level categoricals, heavy tails, a rare flag, ties)
    wine_reference = round(WINE_REFERENCE_SHARE * len(_wine()))
    cells.extend(
        _clean_stream("wine columns", wine_reference, n, 11, data="wine")
        for n in ((250,) if smoke else (250, 1_000))
    )
    cells.extend(
        _clean_stream(f"{m} features, items 1-2 shapes", 5_000, 1_000, m, data="shapes")
        for m in ((3,) if smoke else (3, 10, 30))
    )
    for shift, n in ((0.25, 5_000), (0.5, 250)):
        cells.extend(
            Cell(
                "stream power",
                f"{m} features, {max(1, round(0.3 * m))} shifted +{shift} sd",
                ("normal",),
                ("normal",),
                5_000,
                n,
                POWER,
                True,
                features=m,
                shifted=max(1, round(0.3 * m)),
                extra={"shift": shift},
            )
            for m in features
        )
    return cells


def run(args: Any) -> None:
    """Print the drift tables (Markdown) with 95% intervals; see the module's docstring."""
    smoke = bool(args.smoke)
    cells = [
        *_categorical_cells(smoke),
        *_power_cells(smoke),
        *_numeric_cells(smoke),
        *_stream_cells(smoke),
    ]
    # optional, for reduced runs from Python (decisions.py does not set them): tables to run,
    # batches per cell and references per cell
    tables = getattr(args, "tables", None)
    if tables:
        cells = [cell for cell in cells if cell.table in tables]
    labels = getattr(args, "label", None)
    if labels:
        cells = [cell for cell in cells if any(text in cell.label for text in labels)]
    rows = getattr(args, "rows", None)
    if rows:
        cells = [cell for cell in cells if f"{cell.reference_rows}/{cell.batch_rows}" in rows]
    references = getattr(args, "references", None) or (2 if smoke else 20)
    fixed_batches = getattr(args, "batches", None)

    def batches(cell: Cell) -> int:
        if fixed_batches:
            return int(fixed_batches)
        if smoke:
            return 10
        return 10_000 if not cell.power and cell.target <= 0.01 else 2_000

    started = time.perf_counter()
    jobs = [(cell, batches(cell), references, args.seed) for cell in cells]
    results = run_cells(run_cell, jobs, args)
    print(f"## Drift (issue 26){' — smoke sizes, not a measurement' if smoke else ''}\n")
    print(f"{references} references per cell; seed {args.seed}; {len(cells)} cells\n")
    titles = {
        "categorical": "Categorical columns, clean batches: share of batches flagging the feature",
        "power": "Categorical power and prediction drift on a rare class",
        "numeric": "Numeric shapes, clean batches (one statistic alone at floor 0, or defaults)",
        "stream": "Batch verdicts (drift_share 0.3), clean streams; false retrains per 1,000",
        "stream power": "Batch verdicts, 30% of the features shifted (against 5,000 rows)",
    }
    for table, title in titles.items():
        rows = [(c, r) for c, r in zip(cells, results, strict=True) if c.table == table]
        if not rows:
            continue
        print(f"### {title}\n")
        print("| column / stream | reference / batch rows | batches | rate [95%] | target | |")
        print("|---|---:|---:|---|---:|---|")
        for cell, (counts, per_reference) in rows:
            measured = ClusteredRate.of(counts, per_reference)
            retrains = f"; {1000 * measured.rate:.1f} per 1,000" if table == "stream" else ""
            print(
                f"| {cell.label} | {cell.reference_rows:,} / {cell.batch_rows:,} | "
                f"{measured.n:,} | {measured.text(counted=False)}{retrains}"
                f" | {'>=' if cell.power else '<='} {cell.target:.1%} | "
                f"{'met' if measured.meets(cell.target, cell.power) else 'NOT met'} |"
            )
        print()
    print(f"_drift tables: {time.perf_counter() - started:.0f} s_\n")


if __name__ == "__main__":
    raise SystemExit(run_section(run, __doc__))
