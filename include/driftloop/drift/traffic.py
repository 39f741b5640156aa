"""Drift on served traffic: the prediction log's inputs, window by window, against the
reference, with the batch check's calibrated tests.

Why: a batch is checked when it lands, but the server's own requests never were, so a client
that sends a feature in other units (training-serving skew) went unseen until labels came.
The log keeps every served record's inputs; a window of them is a batch like any other.

What differs from a batch is the verdict. A skew is usually one feature, and the batch rule
(``drift.drift_share`` of the features, 30% by default) is built to ignore one feature out of
ten: a retrain for one column would be a storm. For a window, the features tested together
(PCA reconstruction error, :mod:`driftloop.drift.multivariate`) may also call drift on their
own: a feature sent x100 or x2 by one client breaks the reference's joint structure at once.
They run with the tail test beside the rank test: a client's rows are a few percent of the
window gone far off, which the mean rank barely shows and the count of rows past the
held-out errors' top 1% shows at once (exactly calibrated; the two share the multivariate
level). The multivariate test and the per-feature verdict then share
``drift.false_alarm_rate`` exactly as ``drift.multivariate_retrain`` makes them share it
(``DriftSettings.verdict_rate``), so a clean window is called drift at most that often.
Everything else (statistics, calibration, floors, segments, weighting) is the batch check's.

Windows are aligned on the epoch (a one-hour window starts on the hour), so every run and
every checker cuts the same windows; a window is tested once it has closed and the log's
writer has had ``SETTLE`` to insert its last rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from driftloop.config import DriftSettings
from driftloop.drift.engine import check_drift
from driftloop.drift.profile import ReferenceProfile
from driftloop.drift.verdict import DriftVerdict

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SETTLE = timedelta(seconds=60)
"""How long after a window's end its rows are taken as all written: the log's writer inserts
within a fraction of a second (``driftloop.stages.prediction_writer``); rows spilled during a
database outage and replayed later (``driftloop db replay-spill``) keep their time and miss the
check."""


@dataclass(frozen=True)
class Window:
    """``[start, end)`` of served traffic, in UTC."""

    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        """The window as reports and file names show it: ``20261206T1400Z``."""
        return self.start.strftime("%Y%m%dT%H%M%SZ").replace("00Z", "Z")

    def closed(self, now: datetime) -> bool:
        """Whether every row of the window has been written (its end plus ``SETTLE`` passed)."""
        return self.end + SETTLE <= now


def window_of(at: datetime, length: timedelta) -> Window:
    """The window that holds ``at``: windows of ``length`` laid from the epoch."""
    step = length.total_seconds()
    elapsed = (at.astimezone(UTC) - EPOCH).total_seconds()
    start = EPOCH + timedelta(seconds=(elapsed // step) * step)
    return Window(start, start + length)


def traffic_settings(drift: DriftSettings) -> DriftSettings:
    """The batch check's settings, with the features tested together run and allowed to call
    drift on their own (sharing the false-alarm rate with the per-feature verdict)."""
    if drift.fixed:  # fixed thresholds have no calibrated multivariate test to share with
        return drift
    return drift.model_copy(update={"multivariate": True, "multivariate_retrain": True})


def inputs_frame(inputs: Iterable[Any], features: list[str]) -> tuple[pd.DataFrame, int]:
    """The logged inputs as a batch, and how many records were left out: one row per record
    with the profile's ``features`` as columns (a feature a record lacks is missing, as the
    server logged it); records whose inputs are not a mapping (none logged) are left out."""
    given = list(inputs)
    records = [item for item in given if isinstance(item, Mapping)]
    if not records:
        return pd.DataFrame(columns=features), len(given)
    return pd.DataFrame.from_records(records, columns=features), len(given) - len(records)


def check_window(
    profile: ReferenceProfile,
    frame: pd.DataFrame,
    drift: DriftSettings,
    importances: Mapping[str, float] | None = None,
) -> DriftVerdict:
    """One window's records against the reference: the batch engine under
    :func:`traffic_settings`, with the multivariate tail test."""
    return check_drift(profile, frame, traffic_settings(drift), importances, tail=True)
