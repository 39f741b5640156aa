"""Prediction drift: the Production version's predictions on a batch against its predictions
out of sample (``reference``), with the drift check's own calibrated statistics.

In-sample predictions of a forest are memorised (right, and confident, on every training row)
and would flag every batch; out-of-sample predictions are what the model gives rows it has
not seen, as it does in production. The predicted class (classification) or value
(regression) is one column profiled and tested exactly as a feature is (``driftloop.drift``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from driftloop.config import DriftSettings
from driftloop.drift.engine import check_drift
from driftloop.drift.profile import ReferenceProfile, build_profile
from driftloop.performance.reference import ReferencePredictions

COLUMN = "prediction"


def prediction_profile(
    reference: ReferencePredictions, drift: DriftSettings, classifier: bool, path: Path
) -> ReferenceProfile:
    """The profile of the reference predictions, built once and kept at ``path``."""
    if path.is_file():
        profile = ReferenceProfile.load(path)
        if drift.fixed or profile.is_calibrated(drift.statistics, drift.draws):
            return profile
    profile = build_profile(
        pd.DataFrame({COLUMN: _column(reference.predictions, classifier)}),
        categorical=[COLUMN] if classifier else [],
        target=None,
        target_is_categorical=False,
        bins=drift.bins,
        exact_max=drift.exact_reference_max,
        source=f"out-of-sample predictions ({reference.source})",
        statistics=drift.statistics,
        calibration_draws=0 if drift.fixed else drift.draws,
    )
    profile.save(path)
    return profile


def prediction_drift(
    profile: ReferenceProfile, predictions: np.ndarray, drift: DriftSettings, classifier: bool
) -> dict[str, Any]:
    """The batch's predictions tested against the profile: its flag and its statistics."""
    verdict = check_drift(profile, pd.DataFrame({COLUMN: _column(predictions, classifier)}), drift)
    (column,) = verdict.features
    return {
        "drifted": bool(column.drifted),
        "tested": bool(column.tested),
        "statistics": {
            name: {
                "value": float(test.value),
                "threshold": float(test.threshold),
                "floor": test.floor,
                "p_value": test.p_value,
                "flag": bool(test.flag),
                # the categorical permutation test's numbers (unseen share, new-level p-value)
                **{k: float(v) for k, v in test.measurement.details.items()},
            }
            for name, test in column.tests.items()
        },
        "reference_probabilities": profile.columns[COLUMN].probabilities.tolist(),
        "current_probabilities": column.current_probabilities,
        "levels": profile.columns[COLUMN].levels,
    }


def _column(values: np.ndarray, classifier: bool) -> pd.Series:
    values = np.asarray(values)
    return pd.Series(values.astype(str) if classifier else values.astype(float))
