"""The drift computations run BLAS on one thread, and leave the process's limits as found."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from driftloop.config import DriftSettings
from driftloop.drift import engine
from driftloop.drift import profile as profiles
from driftloop.drift.threads import one_blas_thread


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


@pytest.fixture
def two_threads():
    """BLAS allowed two threads, as on this 2-core machine by default (skipped without BLAS)."""
    if not _blas_threads():
        pytest.skip("no BLAS thread pool is loaded")
    with threadpool_limits(2, "blas"):
        yield


def test_the_limit_holds_inside_and_is_restored_after(two_threads) -> None:
    seen = one_blas_thread(_blas_threads)()
    assert seen and set(seen) == {1}
    assert set(_blas_threads()) == {2}


def test_restored_when_the_function_raises(two_threads) -> None:
    @one_blas_thread
    def fails() -> None:
        raise ValueError("bad batch")

    with pytest.raises(ValueError, match="bad batch"):
        fails()
    assert set(_blas_threads()) == {2}


def _spy(monkeypatch, module, name: str) -> list[list[int]]:
    """Record BLAS's thread counts each time ``module.name`` is called."""
    seen: list[list[int]] = []
    original = getattr(module, name)

    def spying(*args, **kwargs):
        seen.append(_blas_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, spying)
    return seen


SETTINGS = DriftSettings(multivariate_retrain=True)


def _lognormal(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.lognormal(size=(600, 3)), columns=["a", "b", "c"])


def _profile(frame: pd.DataFrame) -> profiles.ReferenceProfile:
    """Built with the multivariate structure, as every detector on needs."""
    return profiles.build_profile(
        frame,
        [],
        None,
        False,
        statistics=SETTINGS.statistics,
        calibration_draws=SETTINGS.draws,
        multivariate=True,
    )


def test_a_build_and_a_check_run_on_one_thread(two_threads, monkeypatch) -> None:
    frame, settings = _lognormal(7), SETTINGS
    in_build = _spy(monkeypatch, profiles, "fit_multivariate")
    profile = _profile(frame)
    in_check = _spy(monkeypatch, engine, "verdict_of")
    verdict = engine.check_drift(profile, frame.iloc[:300], settings)
    assert verdict.features
    for seen in (in_build, in_check):
        assert len(seen) == 1 and set(seen[0]) == {1}
    assert set(_blas_threads()) == {2}


def test_the_multivariate_test_and_the_streamed_check_run_on_one_thread(
    two_threads, monkeypatch
) -> None:
    from driftloop.drift import multivariate, streaming
    from driftloop.drift.sketch import BatchSummary, NumericSummary, fine_edges

    frame, settings = _lognormal(11), SETTINGS
    profile = _profile(frame)
    in_test = _spy(monkeypatch, multivariate, "assess")
    assert engine.multivariate_test(profile, frame.iloc[:300], settings) is not None
    in_summary = _spy(monkeypatch, streaming, "verdict_of")
    summaries = {}
    for name in profile.features:
        summaries[name] = NumericSummary(fine_edges(profile.columns[name]))
        summaries[name].add(frame[name].to_numpy()[:300])
    verdict = streaming.check_summary(profile, BatchSummary(300, summaries), settings)
    assert len(verdict.features) == 3
    for seen in (in_test, in_summary):
        assert len(seen) == 1 and set(seen[0]) == {1}
    assert set(_blas_threads()) == {2}
