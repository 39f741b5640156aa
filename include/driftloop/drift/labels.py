"""Categorical values as labels: one spelling for the profile, the checks and the multivariate
encoding, so a level counted at profile build is the level a batch is matched against."""

from __future__ import annotations

import numpy as np
import pandas as pd

from driftloop.task import labels


def category_labels(series: pd.Series) -> pd.Series:
    """Non-missing values as text labels. Numbers are labelled as a classifier's labels are
    compared (:func:`driftloop.task.labels`: an integral number prints without ``.0``, 6 not
    6.0); booleans are 1 and 0, as stored profiles name them; text stays as it is.

    Each value is labelled on its own, so one 2.5 in a batch does not turn every 3 into "3.0".
    """
    present = series.dropna()
    if pd.api.types.is_bool_dtype(present):
        return present.astype(np.int64).astype(str)
    if not pd.api.types.is_numeric_dtype(present):
        return present.astype(str)
    return pd.Series(labels(present), index=present.index)


def category_counts(series: pd.Series) -> dict[str, int]:
    """Non-missing values counted per label, as if each were labelled by :func:`category_labels`.

    The distinct values are labelled, not the rows: a 1M-row batch needs no million labels. In an
    object column holding anything but text, distinct values can share a hash yet not a label (1,
    1.0 and True count as one value), so such a column is labelled row by row.
    """
    counts = series.value_counts(dropna=True, sort=False)
    keys = pd.Series(counts.index)
    if pd.api.types.is_object_dtype(keys) and not all(isinstance(k, str) for k in keys):
        counts = category_labels(series).value_counts(sort=False)
        return {str(label): int(count) for label, count in counts.items()}
    totals: dict[str, int] = {}
    for label, count in zip(category_labels(keys), counts.to_numpy(), strict=True):
        totals[label] = totals.get(label, 0) + int(count)
    return totals
