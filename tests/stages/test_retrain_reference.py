"""A retrained version's drift reference is the window since the drift: no retrain storm.

Seeded, at CI scale, with the library's own steps (``split_holdout``, ``reference_rows``,
``profile_from_frame``, ``check_drift``); benchmarks/decision_tables_storm.py replays the whole
loop with intervals. The training set a retrain learns from mixes Production's old rows with
the new ones; batches of the new distribution tested against it keep being called drift, and
each call starts another retrain. The rows since the drift are a sample of the new
distribution, so batches from it are called drift at the calibrated rate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftloop.drift.engine import check_drift
from driftloop.settings_loader import load_settings
from driftloop.stages.reference_profiles import profile_from_frame
from driftloop.stages.retrain_steps import Assembly
from driftloop.stages.training_data import reference_rows, split_holdout
from driftloop.vocabulary import Trigger

ROOT = Path(__file__).resolve().parents[2]
START = pd.Timestamp("2026-01-01", tz="UTC")


@pytest.fixture(scope="module")
def settings():
    return load_settings(ROOT / "driftloop.yaml")


def _rows(settings, rng: np.random.Generator, n: int, shift: float) -> pd.DataFrame:
    """Standard normals in the wine columns, the first 4 of 11 moved by ``shift`` sd."""
    values = rng.standard_normal((n, len(settings.feature_columns)))
    values[:, :4] += shift
    frame = pd.DataFrame(values, columns=settings.feature_columns)
    frame[settings.data.target] = rng.choice([5, 6, 7], n)
    return frame


def _window(settings, rng: np.random.Generator, shifts: list[float]) -> pd.DataFrame:
    """Labelled batches of 250 rows, one an hour, as ``assembly`` reads the window."""
    return pd.concat(
        [
            _rows(settings, rng, 250, shift).assign(_batch_time=START + pd.Timedelta(hours=i))
            for i, shift in enumerate(shifts)
        ],
        ignore_index=True,
    )


def test_reference_rows_are_every_row_since_the_drift_holdout_included(settings):
    rng = np.random.default_rng(1)
    recent = _window(settings, rng, [0.0] * 7 + [0.5] * 3)
    drift_time = START + pd.Timedelta(hours=7)
    rows = reference_rows(recent, drift_time, settings)
    columns = [*settings.feature_columns, settings.data.target]
    pd.testing.assert_frame_equal(rows, recent.iloc[-750:][columns].reset_index(drop=True))
    _train, holdout = split_holdout(recent, recent.iloc[:0], drift_time, settings)
    assert len(holdout) == 300 and len(rows) == 750  # the holdout is part of the reference
    # without a drift check: the whole window
    assert len(reference_rows(recent, None, settings)) == len(recent)
    # too few rows since the drift: None, and the version keeps its training set
    fewer = settings.model_copy(
        update={"drift": settings.drift.model_copy(update={"min_reference_rows": 751})}
    )
    assert reference_rows(recent, drift_time, fewer) is None


def test_the_assembly_names_the_rows_its_reference_came_from():
    digest = "ab12" * 16
    since = Assembly(
        "/t/train.csv", "/t/holdout.csv", digest, "3", 7, Trigger.DRIFT, (), "/t/reference.csv",
        "750 rows of the window since drift check 7",
    )  # fmt: skip
    assert since.profile_source == "750 rows of the window since drift check 7"
    assert Assembly.from_xcom(since.to_xcom()) == since
    # an attempt handed on before this field existed still reads, with the training set
    old = {k: v for k, v in since.to_xcom().items() if not k.startswith("reference")}
    assert Assembly.from_xcom(old).reference_path is None
    assert Assembly.from_xcom(old).profile_source == f"training data of run {digest[:12]}"


def test_after_a_retrain_batches_of_the_new_distribution_are_not_called_drift(settings):
    """The retrain ran on the first drifted batch (the window: 9 batches of P, 1 of Q). Against
    the training set (1,500 old rows, 2,250 of the window's P and 150 of Q) batches of Q are
    called drift almost always; against the rows since the drift (250 of Q) at the calibrated
    rate: 30 batches, at most 2 calls (a 1% test exceeds that with probability 0.003)."""
    rng = np.random.default_rng(26)
    base = _rows(settings, rng, 1_500, 0.0)
    recent = _window(settings, rng, [0.0] * 9 + [0.5])
    drift_time = START + pd.Timedelta(hours=9)
    train_frame, _holdout = split_holdout(recent, base, drift_time, settings)
    since = reference_rows(recent, drift_time, settings)
    assert since is not None and len(since) == 250
    now = profile_from_frame(since, settings, "since the drift")
    before = profile_from_frame(train_frame, settings, "training set")
    batches = [_rows(settings, rng, 250, 0.5) for _ in range(30)]
    called_now = sum(check_drift(now, b, settings.drift).drifted for b in batches)
    called_before = sum(check_drift(before, b, settings.drift).drifted for b in batches)
    assert called_before >= 25, called_before  # the storm the old reference made
    assert called_now <= 2, called_now
