"""Property tests: driftloop's statistics equal scipy's on awkward data."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from driftloop.drift.labels import category_counts, category_labels
from driftloop.drift.profile import build_profile
from driftloop.drift.statistics import (
    jensen_shannon,
    jensen_shannon_distance,
    mean_shift,
    wasserstein,
    wasserstein_sorted,
)

# Few distinct values (ties), NaN, and occasionally a constant column.
values = st.sampled_from([0.0, 1.0, 1.5, 2.0, -3.25, 7.0, 1e3, np.nan])
samples = st.one_of(
    arrays(np.float64, st.integers(1, 200), elements=values),
    arrays(
        np.float64,
        st.integers(1, 200),
        elements=st.one_of(st.floats(-1e6, 1e6, width=64), st.just(np.nan)),
    ),
    st.builds(lambda n, v: np.full(n, v), st.integers(1, 50), st.sampled_from([0.0, 4.2, -1.0])),
)


def _profile(reference: np.ndarray, bins: int = 10, exact_max: int = 100_000):
    return build_profile(
        pd.DataFrame({"x": reference}), [], None, False, bins=bins, exact_max=exact_max
    ).columns["x"]


@settings(max_examples=300, deadline=None)
@given(samples, samples, st.integers(2, 20))
def test_wasserstein_and_jensen_shannon_equal_scipy(reference, current, bins):
    ref, cur = reference[~np.isnan(reference)], np.sort(current[~np.isnan(current)])
    if ref.size == 0 or cur.size == 0:
        return
    column = _profile(reference, bins)

    measured = wasserstein(column, cur)
    expected = wasserstein_distance(ref, cur)
    assert abs(measured.details["distance"] - expected) <= 1e-9 * max(1.0, abs(expected))
    std = np.std(ref, ddof=1) if ref.size > 1 else 0.0
    if std > 0:
        assert abs(measured.value - expected / std) <= 1e-9 * max(1.0, abs(expected / std))
    else:
        assert measured.value == (0.0 if expected == 0 else np.inf)

    # The same bins: fitted on the reference, open at both ends.
    edges = column.bin_edges
    ref_counts = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=edges.size + 1)
    cur_counts = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=edges.size + 1)
    assert np.allclose(column.probabilities, ref_counts / ref_counts.sum(), rtol=0, atol=1e-15)
    # Rounding can push a zero divergence below 0, where scipy gives NaN: identical histograms.
    expected_js = np.nan_to_num(jensenshannon(column.probabilities, cur_counts, base=2))
    assert abs(jensen_shannon(column, cur).value - expected_js) <= 1e-9
    assert 0.0 <= jensen_shannon(column, cur).value <= 1.0


@settings(max_examples=100, deadline=None)
@given(samples, samples)
def test_mean_shift_is_standardized_difference_of_means(reference, current):
    ref, cur = reference[~np.isnan(reference)], current[~np.isnan(current)]
    if ref.size < 2 or cur.size == 0 or np.std(ref, ddof=1) == 0:
        return
    expected = abs(cur.mean() - ref.mean()) / np.std(ref, ddof=1)
    assert abs(mean_shift(_profile(reference), cur).value - expected) <= 1e-9 * max(1.0, expected)


def test_sketch_stays_within_its_documented_bound():
    rng = np.random.default_rng(7)
    reference = rng.lognormal(size=50_000)
    current = rng.lognormal(0.3, size=5_000)
    column = _profile(reference, exact_max=1_000)
    assert not column.exact and column.values.size == 1_000
    bound = column.wasserstein_error_bound
    assert bound == (reference.max() - reference.min()) / 1_000
    sketched = wasserstein(column, np.sort(current)).details["distance"]
    assert abs(sketched - wasserstein_distance(reference, current)) <= bound


@settings(max_examples=300, deadline=None)
@given(samples, samples, st.integers(1, 9))
def test_wasserstein_block_by_block_equals_scipy(reference, current, block):
    """Tiny blocks put block edges inside runs of tied values and between the two samples."""
    ref, cur = np.sort(reference[~np.isnan(reference)]), np.sort(current[~np.isnan(current)])
    if ref.size == 0 or cur.size == 0:
        return
    expected = wasserstein_distance(ref, cur)
    measured = wasserstein_sorted(ref, cur, block=block)
    assert abs(measured - expected) <= 1e-9 * max(1.0, abs(expected))


@settings(max_examples=200, deadline=None)
@given(
    arrays(np.float64, st.integers(1, 12), elements=st.sampled_from([0.0, 1.0, 3.0, 250.0])),
    arrays(np.float64, st.integers(1, 12), elements=st.sampled_from([0.0, 1.0, 2.0, 1e4])),
)
def test_jensen_shannon_distance_equals_scipy(p, q):
    n = min(p.size, q.size)
    p, q = p[:n], q[:n]
    if p.sum() == 0 or q.sum() == 0:
        return
    expected = jensenshannon(p, q, base=2)
    measured = jensen_shannon_distance(p, q)
    assert (np.isnan(measured) and np.isnan(expected)) or abs(measured - expected) <= 1e-12


def test_category_counts_label_like_every_row_would():
    columns = [
        pd.Series(["red", None, "white", "red", np.nan]),
        pd.Series([1.0, 2.0, 2.5, np.nan, 1.0, -0.0, 0.0]),
        pd.Series([3, 1, 3, 2]),
        pd.Series([True, False, True]),
        pd.Series([1, None, 1], dtype="Int64"),
        pd.Series([1, 1.0, True, "1", "a", None], dtype=object),  # 1 == 1.0 == True, not labels
        pd.Series(["b", "a", "b"], dtype="category"),
        pd.Series(["x", None, "x"], dtype="string"),
    ]
    for series in columns:
        expected = category_labels(series).value_counts().to_dict()
        assert category_counts(series) == expected, series
