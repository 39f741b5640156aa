"""The interval that decides whether a drift cell of the benchmark is met (issue 26, item 5).

Why: batches checked against one reference share its sampling error; a binomial interval over
all of them called a cell whose flags came from five of 20 references precise. The clustered
interval must widen there, reduce to Clopper-Pearson where batches are independent, and cover
the true rate about 95% of the time when references do differ.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = str(Path(__file__).resolve().parents[2] / "benchmarks")
if BENCHMARKS not in sys.path:  # the benchmarks import their shared code as ``support``
    sys.path.append(BENCHMARKS)
from support.decisions import ClusteredRate, clustered_interval, interval  # noqa: E402


def test_one_batch_per_reference_is_clopper_pearson() -> None:
    counts = [1] * 16 + [0] * 1984
    lower, upper, deff = clustered_interval(counts, 1)
    assert deff == 1.0
    assert (lower, upper) == pytest.approx(interval(16, 2000))


def test_flags_from_a_few_references_widen_the_interval() -> None:
    # the traced cell: 40 of 2,000, from five of 20 references (27, 7, 3, 2, 1 of 100)
    counts = [27, 7, 3, 2, 1] + [0] * 15
    lower, upper, deff = clustered_interval(counts, 100)
    binomial = interval(40, 2000)
    assert deff > 10
    assert upper > 2 * binomial[1] and lower < binomial[0]
    assert lower < 0.02 < upper


def test_covers_the_rate_over_references_that_differ() -> None:
    """References whose own rates vary (a beta around 1%): the interval of 20 references of 100
    batches covers the mean rate in about 95% of 400 seeded repetitions, where the binomial
    interval over the 2,000 batches covers it far less often."""
    rng = np.random.default_rng(20261207)
    mean, shape = 0.01, 0.5  # beta(a, b) with a / (a + b) = 1%: a few references carry most
    a, b = shape, shape * (1 - mean) / mean
    covered = binomial_covered = 0
    for _ in range(400):
        rates = rng.beta(a, b, 20)
        counts = rng.binomial(100, rates).tolist()
        lower, upper, _ = clustered_interval(counts, 100)
        covered += lower <= mean <= upper
        low, high = interval(sum(counts), 2000)
        binomial_covered += low <= mean <= high
    assert covered >= 0.90 * 400, covered
    assert binomial_covered < covered - 40, (binomial_covered, covered)


def test_streams_of_unequal_length_weigh_by_their_batches() -> None:
    """Storm streams count different numbers of batches: equal rates give no design effect, and
    the pooled rate is flags over batches, not the mean of the streams' rates."""
    lower, upper, deff = clustered_interval([1, 2, 4], [100, 200, 400])
    assert deff == 1.0
    assert (lower, upper) == pytest.approx(interval(7, 700))
    measured = ClusteredRate.of([0, 10], [900, 100])
    assert measured.rate == pytest.approx(0.01)
    assert measured.deff > 5
    assert (measured.most, measured.most_of) == (10, 100)


def test_a_rate_says_its_design_effect_and_meets_its_target_by_the_interval() -> None:
    clean = ClusteredRate.of([1] * 16 + [0] * 1984, 1)
    assert clean.text() == "0.80% [0.46%, 1.30%] of 2,000"
    assert clean.meets(0.01)
    clustered = ClusteredRate.of([27, 7, 3, 2, 1] + [0] * 15, 100)
    assert "(deff" in clustered.text() and "one reference 27 of 100" in clustered.text()
    assert not clustered.meets(0.025)  # its estimate, 2%, is below; its upper bound is not
    power = ClusteredRate.of([99] * 20, 100)
    assert power.meets(0.95, power=True) and not power.meets(0.995, power=True)
    assert ClusteredRate.of([], 100).upper == 1.0
