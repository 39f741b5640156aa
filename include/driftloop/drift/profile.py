"""Reference profiles: a reference data set summarised once, so checks never reload it.

Per numeric column the profile keeps the moments, quantile bin edges with the reference's bin
probabilities, and the sorted reference values, so the Wasserstein distance stays exact. Past
``exact_reference_max`` values a column keeps a quantile sketch instead: ``K`` quantiles at the
levels ``(i + 0.5) / K``. Its Wasserstein distance to the full reference is at most
``(max - min) / K`` (each of the ``K`` slices of the quantile function moves by at most its own
range, and the ranges add up to ``max - min``), so by the triangle inequality any Wasserstein
distance computed from the sketch is within that bound of the exact one. The bound is stored
per column as ``wasserstein_error_bound`` and shown in reports.

Each column also keeps its statistics' null distributions (``driftloop.drift.calibration``),
drawn once when the profile is built, so checks compare against thresholds calibrated to their
own batch size without resampling. Profiles of format 1 have none; they are calibrated when
first used and saved again (``driftloop.stages.drift_check``).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from driftloop.drift.calibration import NullDistribution, sorted_quantiles
from driftloop.drift.column import CATEGORICAL, NUMERIC, ColumnProfile
from driftloop.drift.labels import category_labels
from driftloop.drift.multivariate import MultivariateReference
from driftloop.drift.multivariate import fit as fit_multivariate
from driftloop.drift.segments import SegmentReference
from driftloop.drift.segments import fit as fit_segments
from driftloop.drift.statistics import STATISTICS, resampled_null
from driftloop.drift.threads import one_blas_thread

FORMAT_VERSION = 3
READABLE_FORMATS = (1, 2, 3)
"""Format 1 (before calibration) still loads; it is calibrated on first use."""


@dataclass
class ReferenceProfile:
    """A stored summary of a reference data set, one :class:`ColumnProfile` per column."""

    columns: dict[str, ColumnProfile]
    target: str | None
    rows: int
    source: str
    data_digest: str
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    calibration_draws: int = 0
    format: int = FORMAT_VERSION
    # the features' joint structure (format 3; None: built without it, or too small)
    multivariate: MultivariateReference | None = None
    # each segment's reference rows (format 3; empty without drift.segment_by)
    segments: list[SegmentReference] = field(default_factory=list)

    @property
    def features(self) -> list[str]:
        return [name for name in self.columns if name != self.target]

    def is_calibrated(self, statistics: Iterable[str], draws: int) -> bool:
        """Whether every column holds at least ``draws`` null draws of every statistic that
        fits it (more draws only make the p-values finer)."""
        return self.calibration_draws >= draws and not any(self._uncalibrated(statistics))

    def _uncalibrated(self, statistics: Iterable[str]) -> Iterable[tuple[ColumnProfile, str]]:
        names = list(statistics)
        for column in self.columns.values():
            if column.count == 0:
                continue
            for name in names:
                statistic = STATISTICS[name]
                if column.kind == CATEGORICAL and statistic.permutation is not None:
                    continue  # tested by permutation at check time: nothing to draw here
                if column.kind in statistic.column_kinds and name not in column.nulls:
                    yield column, name

    def calibrate(self, statistics: Iterable[str], draws: int) -> bool:
        """Draw the missing null distributions; return whether anything was drawn.

        The generator is seeded by the reference's content, so one reference always gets the
        same thresholds. Asking for more draws than the profile holds redraws everything;
        asking for fewer keeps what it holds (and draws missing columns at that number), so
        checks that need different numbers (a batch, a served-traffic window) share one
        profile without redrawing it in turn.
        """
        names = list(statistics)
        if self.calibration_draws < draws:
            for column in self.columns.values():
                column.nulls.clear()
            self.calibration_draws = draws
        draws = self.calibration_draws
        missing = list(self._uncalibrated(names))
        if not missing:
            return False
        rng = np.random.default_rng(int(self.data_digest[:16] or "0", 16))
        for column, name in missing:
            statistic = STATISTICS[name]
            null = (
                statistic.null(column, draws, rng)
                if statistic.null is not None
                else resampled_null(statistic, column, draws, rng)
            )
            # stored as float32 (ample for thresholds): round now, so a loaded profile decides
            # exactly as the one in memory
            column.nulls[name] = replace(null, draws=null.draws.astype(np.float32).astype(float))
        return True

    def save(self, path: Path) -> str:
        """Write the profile as one ``.npz`` file; return its SHA-256."""
        arrays: dict[str, np.ndarray] = {}
        meta = {
            "format": FORMAT_VERSION,
            "calibration_draws": self.calibration_draws,
            "target": self.target,
            "rows": self.rows,
            "source": self.source,
            "data_digest": self.data_digest,
            "created_at": self.created_at,
            "columns": [],
            "multivariate": self.multivariate.to_meta() if self.multivariate else None,
        }
        if self.multivariate is not None:
            arrays.update(self.multivariate.arrays())
        meta["segments"] = []
        for index, segment in enumerate(self.segments):
            meta["segments"].append(
                {
                    "column": segment.column,
                    "value": segment.value,
                    "rows": segment.rows,
                    "numeric": list(segment.numeric),
                    "categorical": segment.categorical,
                }
            )
            for position, values in enumerate(segment.numeric.values()):
                arrays[f"segment_{index}_{position}"] = values
        for index, column in enumerate(self.columns.values()):
            record = asdict(column)
            for key in ("values", "bin_edges", "probabilities"):
                arrays[f"{index}_{key}"] = np.asarray(record.pop(key), dtype=float)
            record.pop("nulls")
            record["null_sizes"] = {name: list(null.sizes) for name, null in column.nulls.items()}
            for name, null in column.nulls.items():
                arrays[f"{index}_null_{name}"] = null.draws.astype(np.float32)  # ample for tails
            meta["columns"].append(record)
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_name(path.name + ".part")
        staged.write_bytes(buffer.getvalue())
        staged.replace(path)
        return hashlib.sha256(buffer.getvalue()).hexdigest()

    @classmethod
    def load(cls, path: Path) -> ReferenceProfile:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(stored["meta"].tobytes().decode())
            if meta.get("format") not in READABLE_FORMATS:
                raise ValueError(
                    f"{path}: profile format {meta.get('format')} is not one of {READABLE_FORMATS}"
                )
            columns = {}
            for index, record in enumerate(meta["columns"]):
                for key in ("values", "bin_edges", "probabilities"):
                    record[key] = stored[f"{index}_{key}"]
                record["nulls"] = {
                    name: NullDistribution(
                        tuple(sizes), stored[f"{index}_null_{name}"].astype(float)
                    )
                    for name, sizes in record.pop("null_sizes", {}).items()
                }
                columns[record["name"]] = ColumnProfile(**record)
            stored_multivariate = meta.get("multivariate")
            multivariate = (
                MultivariateReference.from_stored(stored_multivariate, stored)
                if stored_multivariate
                else None
            )
            segments = [
                SegmentReference(
                    record["column"],
                    record["value"],
                    record["rows"],
                    {
                        name: stored[f"segment_{index}_{position}"]
                        for position, name in enumerate(record["numeric"])
                    },
                    record["categorical"],
                )
                for index, record in enumerate(meta.get("segments") or [])
            ]
        return cls(
            columns,
            meta["target"],
            meta["rows"],
            meta["source"],
            meta["data_digest"],
            meta["created_at"],
            calibration_draws=meta.get("calibration_draws", 0),
            format=meta["format"],
            multivariate=multivariate,
            segments=segments,
        )


@one_blas_thread
def build_profile(
    frame: pd.DataFrame,
    categorical: list[str],
    target: str | None,
    target_is_categorical: bool,
    bins: int = 10,
    exact_max: int = 100_000,
    source: str = "",
    statistics: Iterable[str] = (),
    calibration_draws: int = 0,
    multivariate: bool = False,
    segment_by: Iterable[str] = (),
    segment_min_rows: int = 200,
) -> ReferenceProfile:
    """Summarise ``frame`` (features and, if present, the target) into a profile.

    With ``statistics`` and ``calibration_draws``, their null distributions are drawn too; with
    ``multivariate``, the features' joint structure (``driftloop.drift.multivariate``); with
    ``segment_by``, each segment's rows (``driftloop.drift.segments``).
    """
    if frame.empty:
        raise ValueError("cannot profile an empty reference data set")
    columns = {}
    for name in frame.columns:
        is_categorical = name in categorical or (name == target and target_is_categorical)
        series = frame[name]
        columns[name] = (
            _categorical_column(name, series)
            if is_categorical
            else _numeric_column(name, series, bins, exact_max)
        )
    digest = hashlib.sha256(
        pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()
    ).hexdigest()
    profile = ReferenceProfile(
        columns, target if target in frame.columns else None, len(frame), source, digest
    )
    if calibration_draws:
        profile.calibrate(statistics, calibration_draws)
    features = profile.features
    numeric = [name for name in features if columns[name].kind == NUMERIC]
    categorical_features = [name for name in features if columns[name].kind == CATEGORICAL]
    if multivariate:
        profile.multivariate = fit_multivariate(
            frame[features], numeric, categorical_features, seed=int(digest[:8], 16)
        )
    by = [name for name in segment_by if name in frame.columns]
    if by:
        profile.segments = fit_segments(frame, by, numeric, categorical_features, segment_min_rows)
    return profile


def _numeric_column(name: str, series: pd.Series, bins: int, exact_max: int) -> ColumnProfile:
    raw = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    values = np.sort(raw[np.isfinite(raw)])  # infinities count as missing, like NaN
    missing = 1.0 - values.size / max(raw.size, 1)
    if values.size == 0:
        return ColumnProfile(name, NUMERIC, 0, missing, probabilities=np.ones(1))
    levels = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    edges = np.unique(sorted_quantiles(values, levels))
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
    exact = values.size <= exact_max
    kept = values if exact else sorted_quantiles(values, (np.arange(exact_max) + 0.5) / exact_max)
    return ColumnProfile(
        name=name,
        kind=NUMERIC,
        count=int(values.size),
        missing_share=float(missing),
        mean=float(values.mean()),
        std=float(values.std(ddof=1)) if values.size > 1 else 0.0,
        minimum=float(values[0]),
        maximum=float(values[-1]),
        values=kept,
        exact=exact,
        wasserstein_error_bound=0.0 if exact else float(values[-1] - values[0]) / exact_max,
        bin_edges=edges,
        probabilities=counts / counts.sum(),
    )


def _categorical_column(name: str, series: pd.Series) -> ColumnProfile:
    present = category_labels(series)
    counts = present.value_counts(sort=True)
    probabilities = np.append(counts.to_numpy(dtype=float), 0.0)  # last bin: unseen levels
    total = probabilities.sum()
    return ColumnProfile(
        name=name,
        kind=CATEGORICAL,
        count=int(present.size),
        missing_share=float(1.0 - present.size / max(len(series), 1)),
        levels=[str(level) for level in counts.index],
        probabilities=probabilities / total if total else probabilities,
    )
