"""Batches above ``drift.exact_batch_max``: validated and checked by row group, from mergeable
summaries, with the Wasserstein distance within its reported bound of the exact one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from driftloop.config import DriftSettings
from driftloop.drift.engine import check_drift
from driftloop.drift.profile import build_profile
from driftloop.drift.sketch import BatchSummary, NumericSummary, fine_edges
from driftloop.drift.streaming import check_drift_streamed, check_summary
from driftloop.ingestion.validation import validate_file
from driftloop.stages.drift_check import check_next_batch
from driftloop.stages.ingest import ingest_landing
from driftloop.stages.reference_profiles import reset_reference, resolve_profile

STATS = ["mean_shift", "wasserstein", "jensen_shannon"]


def _draw(rng: np.random.Generator, kind: str, n: int, shift: float = 0.0) -> np.ndarray:
    if kind == "normal":
        return rng.normal(shift, 1.0, n)
    if kind == "heavy":  # Student t with 2 degrees of freedom: no finite variance
        return rng.standard_t(2, n) + shift
    if kind == "skewed":
        return rng.lognormal(0.0, 1.0, n) + shift
    return np.round(rng.gamma(2.0, 1.0, n)) + shift  # "ties": few distinct values


def _write_groups(path: Path, frames: list[pd.DataFrame]) -> Path:
    """One row group per frame, each with its own dictionaries (levels differ between them)."""
    tables = [pa.Table.from_pandas(f, preserve_index=False) for f in frames]
    with pq.ParquetWriter(path, tables[0].schema) as writer:
        for table in tables:
            writer.write_table(table)
    return path


def _profile(rng: np.random.Generator, kinds: list[str], n: int = 4000):
    frame = pd.DataFrame({k: _draw(rng, k, n) for k in kinds})
    frame["colour"] = rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2])
    return build_profile(
        frame, ["colour"], None, False, statistics=STATS, calibration_draws=1000, exact_max=2000
    )


@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_the_sketched_check_is_within_its_bound_of_the_exact_one(tmp_path, rng, shift):
    kinds = ["normal", "heavy", "skewed", "ties"]
    profile = _profile(rng, kinds)
    groups = []
    for index, levels in enumerate((["red", "green"], ["blue", "red", "violet"], ["green"])):
        part = pd.DataFrame({k: _draw(rng, k, 1500, shift) for k in kinds})
        part.loc[part.index % (5 + index) == 0, "normal"] = np.nan  # missing values
        part.loc[3, "skewed"] = np.inf  # counts as missing, as on the exact path
        part["colour"] = rng.choice(levels, len(part))
        part.loc[part.index % 11 == 0, "colour"] = None
        groups.append(part)
    path = _write_groups(tmp_path / "batch.parquet", groups)
    settings = DriftSettings(statistics=STATS, calibration_draws=1000, exact_batch_max=1000)
    sketched = check_drift_streamed(profile, path, settings)
    exact = check_drift(profile, pd.concat(groups, ignore_index=True), settings)
    assert sketched.sketched and not exact.sketched and sketched.rows == exact.rows == 4500
    for s, e in zip(sketched.features, exact.features, strict=True):
        assert s.count == e.count and s.missing_share == pytest.approx(e.missing_share)
        assert s.current_probabilities == pytest.approx(e.current_probabilities, abs=1e-15)
        for name, test in e.tests.items():
            got = s.tests[name]
            if name == "wasserstein":
                bound = got.sketch_bound
                assert abs(got.value - test.value) <= bound + 1e-12
                assert bound < 0.05  # informative, not merely valid
            else:  # the mean and the binned counts are exact
                assert got.value == pytest.approx(test.value, rel=1e-9, abs=1e-15)
                assert got.sketch_bound == 0.0
    assert sketched.features[-1].current_probabilities[-1] > 0  # "violet": an unseen level


def test_the_bound_holds_for_batches_far_outside_the_reference(rng):
    profile = _profile(rng, ["normal"])
    column = profile.columns["normal"]
    for values in (rng.normal(8.0, 3.0, 5000), rng.standard_t(1, 5000), np.full(100, 2.5)):
        summary = NumericSummary(fine_edges(column))
        for part in np.array_split(values, 3):
            summary.add(part)
        from scipy.stats import wasserstein_distance

        means, counts, bound = summary.support()
        exact = wasserstein_distance(column.values, values)
        sketch = wasserstein_distance(column.values, means, v_weights=counts)
        assert abs(exact - sketch) <= bound + 1e-9
        assert summary.mean == pytest.approx(values.mean())


def _flag_rates(rng, profile, shift: float, trials: int) -> tuple[float, float]:
    """Share of batches flagged on the sketch path and on the exact path; effect floors 0, so
    the calibrated thresholds (and the sketch's bound) alone decide."""
    settings = DriftSettings(
        statistics=STATS,
        calibration_draws=1000,
        exact_batch_max=1000,
        effect_floor=dict.fromkeys(STATS, 0.0),
    )
    column = profile.columns["skewed"]
    sketched = exact = 0
    for _ in range(trials):
        values = _draw(rng, "skewed", 2000, shift)
        summary = NumericSummary(fine_edges(column))
        summary.add(values)
        verdict = check_summary(profile, BatchSummary(2000, {"skewed": summary}), settings)
        sketched += verdict.features[0].drifted
        exact += check_drift(profile, pd.DataFrame({"skewed": values}), settings).drifted
    return sketched / trials, exact / trials


def test_sketch_path_keeps_false_alarms_at_their_rate_and_finds_a_planted_shift(rng):
    profile = _profile(rng, ["skewed"], n=20_000)
    profile.columns.pop("colour")
    false_sketch, false_exact = _flag_rates(rng, profile, 0.0, 150)
    assert false_sketch <= false_exact + 1e-12  # value minus bound: never more flags
    assert false_sketch <= 0.04  # level 0.01; 150 trials
    power_sketch, power_exact = _flag_rates(rng, profile, 0.15, 40)
    assert power_exact == 1.0 and power_sketch >= 0.9


def _large_settings(settings, exact_batch_max: int = 1000):
    return settings.model_copy(
        update={
            "data": settings.data.model_copy(update={"format": "parquet"}),
            "drift": settings.drift.model_copy(update={"exact_batch_max": exact_batch_max}),
        }
    )


def _wine(settings) -> pd.DataFrame:
    return pd.read_csv(settings.data.path, sep=";")


def test_streamed_validation_gives_the_whole_file_sentences(settings, tmp_path):
    wine = _wine(settings).iloc[:3000].reset_index(drop=True)
    wine.loc[2500, "pH"] = 15.0  # above the maximum, in the third row group
    wine.loc[::3, "alcohol"] = np.nan  # 33% missing
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pandas(wine, preserve_index=False), path, row_group_size=1000)
    streamed = validate_file(path, _large_settings(settings, 1000))
    whole = validate_file(path, _large_settings(settings, 10_000))
    assert not streamed.ok and streamed.frame is None and whole.frame is None
    assert streamed.reasons == whole.reasons
    assert any(
        "'pH': 1 value(s) above the maximum 14 (first 15.0 in data row 2501)" in r
        for r in streamed.reasons
    )
    assert any("'alcohol': 33% missing" in r for r in streamed.reasons)


def test_a_large_batch_goes_through_ingest_and_check_with_its_bound_reported(settings, engine):
    settings = _large_settings(settings, 1000)
    wine = _wine(settings)
    home = settings.storage.home
    home.mkdir(parents=True, exist_ok=True)
    reference = home / "reference.parquet"
    wine.iloc[:2000].to_parquet(reference, index=False)
    reset_reference(settings, engine, reference)
    batch = wine.iloc[2000:4500].reset_index(drop=True)
    settings.storage.landing_dir.mkdir(parents=True, exist_ok=True)
    landed = settings.storage.landing_dir / "batch-20260101T000000Z.parquet"
    pq.write_table(pa.Table.from_pandas(batch, preserve_index=False), landed, row_group_size=700)
    [outcome] = ingest_landing(settings, engine)
    assert outcome.status == "accepted" and outcome.n_rows == 2500
    checked = check_next_batch(settings, engine)
    assert checked.status in ("no_drift", "drift") and checked.error is None
    report = json.loads(Path(checked.html_path).with_suffix(".json").read_text())
    assert report["sketched"] is True and report["rows"] == 2500
    bounds = [f["statistics"]["wasserstein"]["sketch_bound"] for f in report["features"]]
    assert min(bounds) >= 0  # 0 here: wine's values are few per bin, each bin one value
    assert all("batch_error_bound" in f["statistics"]["wasserstein"] for f in report["features"])
    assert "sketch &plusmn;" in Path(checked.html_path).read_text()
    _, profile = resolve_profile(settings, engine)
    exact = check_drift(profile, batch, settings.drift)
    for stored, e in zip(report["features"], exact.features, strict=True):
        sketch = stored["statistics"]["wasserstein"]
        assert abs(sketch["value"] - e.tests["wasserstein"].value) <= sketch["sketch_bound"]


def test_batches_up_to_exact_batch_max_stay_on_the_exact_path(settings, tmp_path):
    wine = _wine(settings).iloc[:1000]
    path = tmp_path / "small.parquet"
    pq.write_table(pa.Table.from_pandas(wine, preserve_index=False), path, row_group_size=300)
    whole = validate_file(path, _large_settings(settings, 1000))  # 1000 rows: not above
    assert whole.ok and whole.frame is not None and whole.rows == 1000
    assert validate_file(path, _large_settings(settings, 10_000)).reasons == whole.reasons
