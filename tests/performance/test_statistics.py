"""The statistics of performance monitoring, with seeded simulations: intervals stay in [0, 1];
the drop test keeps false alarms at its level on a healthy model and finds planted drops; the
estimate before labels tracks realized accuracy and answers the three known-answer cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from driftloop.ab.statistics import timeline
from driftloop.config import MonitoringSettings
from driftloop.drift.engine import check_drift
from driftloop.performance.estimated import Calibrator, estimate_performance
from driftloop.performance.intervals import estimate, macro_f1, macro_f1_resampled, proportion
from driftloop.performance.realized import drop_test
from driftloop.performance.reference import out_of_sample, predict_frame
from driftloop.stages.reference_profiles import profile_from_frame
from driftloop.task import ACCURACY, MAE
from tests.support.performance import FEATURES, pipeline, synthetic, synthetic_settings

MONITORING = MonitoringSettings(alpha=0.05, min_drop=0.0)


@pytest.mark.parametrize(("correct", "n"), [(0, 1), (1, 1), (0, 5), (5, 5), (3, 250), (249, 250)])
def test_proportion_intervals_are_wilson_and_stay_inside_0_1(correct, n):
    band = proportion(correct, n)
    expected = stats.binomtest(correct, n).proportion_ci(0.95, method="wilson")
    assert (band.low, band.high) == pytest.approx((expected.low, expected.high))
    assert 0.0 <= band.low <= band.value <= band.high <= 1.0


def test_ab_timeline_bands_stay_inside_0_1_from_the_first_record():
    """Early on a normal band around 0/1 outcomes dipped below 0 (the issue's A/B report)."""
    at = pd.date_range("2026-01-01", periods=6, freq="min")
    frames = {
        variant: pd.DataFrame(
            {
                "created_at": at,
                "request_id": [f"{variant}-{i}" for i in range(6)],
                "prediction": [1, 1, 2, 2, 2, 2],
                "truth": [2, 2, 2, 2, 2, 1] if variant == "production" else [1, 2, 2, 1, 1, 1],
            }
        )
        for variant in ("production", "staging")
    }
    points = timeline(frames, "accuracy", 0.02, 0.05)
    bands = [p[v] for p in points for v in ("production", "staging") if v in p]
    assert bands and all(0.0 <= b["low"] <= b["value"] <= b["high"] <= 1.0 for b in bands)


def _accuracy_alarms(rng, p_now: float, p_reference: float, n: int, runs: int) -> float:
    reference = (rng.random(500) < p_reference).astype(float)
    alarms = 0
    for _ in range(runs):
        current = (rng.random(n) < p_now).astype(float)
        alarms += drop_test(current, reference, ACCURACY, MONITORING).decayed
        reference = (rng.random(500) < p_reference).astype(float)
    return alarms / runs


def test_the_accuracy_drop_test_keeps_false_alarms_at_alpha_and_finds_a_drop(rng):
    """250-row batches against a 500-row reference, alpha 0.05: no drop alarms in at most 5%
    of 400 healthy batches (Fisher's test is conservative); a drop of 0.85 to 0.72 (about four
    standard errors at 250 rows) is found in at least 90%."""
    assert _accuracy_alarms(rng, 0.85, 0.85, 250, 400) <= 0.05
    assert _accuracy_alarms(rng, 0.72, 0.85, 250, 200) >= 0.90


def test_a_raw_difference_is_not_a_drop_below_the_floor(rng):
    """A million rows make a 0.5-point drop significant; min_drop keeps it from decaying."""
    reference = (rng.random(100_000) < 0.85).astype(float)
    current = (rng.random(1_000_000) < 0.845).astype(float)
    floored = drop_test(current, reference, ACCURACY, MonitoringSettings(alpha=0.05, min_drop=0.03))
    assert floored.p_value < 0.05 and not floored.decayed


def test_the_error_drop_test_keeps_false_alarms_and_finds_a_worse_mae(rng):
    def alarms(scale: float, runs: int) -> float:
        found = 0
        for _ in range(runs):
            reference = np.abs(rng.normal(0, 1.0, 400))
            current = np.abs(rng.normal(0, scale, 250))
            found += drop_test(current, reference, MAE, MONITORING).decayed
        return found / runs

    assert alarms(1.0, 400) <= 0.075  # Welch's t on skewed |errors|: near its level
    assert alarms(1.4, 200) >= 0.90


# --- the estimate before labels (CBPE) ------------------------------------------------------


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A model of the synthetic problem, its cross-validated reference and calibration."""
    rng = np.random.default_rng(17)
    settings = synthetic_settings(
        tmp_path_factory.mktemp("home"),
        drift={"calibration_draws": 400, "false_alarm_rate": 0.05, "drift_share": 0.25},
    )
    train = synthetic(rng, 2000)
    model = pipeline().fit(train[FEATURES], train["y"])
    reference = out_of_sample(model, train, None, settings)
    return settings, model, reference, Calibrator(reference), train


def _signals(settings, model, reference, calibrator, train, batch):
    """What each signal says on one batch: realized and estimated accuracy, input drift."""
    predicted, probabilities = predict_frame(model, batch[FEATURES], [0, 1])
    accuracy = float(np.mean(reference.labelled().eval("prediction == truth")))
    estimated = estimate_performance(
        calibrator, probabilities, accuracy, settings.monitoring, predicted
    )
    realized = float(np.mean(predicted == batch["y"].astype(str).to_numpy()))
    drift = check_drift(profile_from_frame(train, settings, "train"), batch, settings.drift)
    return realized, estimated, drift, accuracy


def test_the_reference_is_out_of_sample_and_the_estimate_tracks_realized_accuracy(fitted):
    """Cross-validated, not in-sample: the reference is about what fresh rows get. On 40 fresh
    250-row batches the estimate's band (at 1 - 2 * alpha) holds the realized accuracy in at
    least 85% of them, and no batch shows an estimated drop more often than 5%."""
    _settings, model, reference, _calibrator, train = fitted
    assert reference.source == "cross-validation" and reference.rows == len(train)
    rng = np.random.default_rng(3)
    fresh = synthetic(rng, 5000)
    fresh_accuracy = float(
        np.mean(predict_frame(model, fresh[FEATURES], [0, 1])[0] == fresh["y"].astype(str))
    )
    accuracy = float(np.mean(reference.labelled().eval("prediction == truth")))
    assert abs(accuracy - fresh_accuracy) < 0.02
    inside = drops = 0
    for _ in range(40):
        realized, estimated, _, _ = _signals(*fitted, synthetic(rng, 250))
        band = estimated.metrics["accuracy"]
        inside += band.low <= realized <= band.high
        drops += estimated.dropped
    assert inside / 40 >= 0.85 and drops / 40 <= 0.05


def test_covariate_shift_that_keeps_accuracy(fitted):
    """Inputs move (an irrelevant feature shifts by three sd): input drift fires; the estimate
    and the realized accuracy stay."""
    rng = np.random.default_rng(5)
    realized, estimated, drift, reference = _signals(*fitted, synthetic(rng, 400, noise_shift=3.0))
    assert drift.drifted and "noise" in drift.drifted_features
    assert abs(realized - reference) < 0.05
    assert not estimated.dropped and abs(estimated.metrics["accuracy"].value - reference) < 0.05


def test_shift_into_regions_where_the_model_is_unsure(fitted):
    """Rows crowd near the boundary: realized accuracy drops and the estimate sees it."""
    rng = np.random.default_rng(7)
    realized, estimated, _, reference = _signals(*fitted, synthetic(rng, 1000, signal_scale=0.5))
    assert realized < reference - 0.1
    assert estimated.dropped and abs(estimated.metrics["accuracy"].value - realized) < 0.06


def test_concept_shift_that_keeps_the_inputs(fitted):
    """The rule moves, the inputs do not: realized accuracy drops, no input drift, and the
    estimate cannot see it (by design: the same probabilities, now wrong)."""
    rng = np.random.default_rng(9)
    realized, estimated, drift, reference = _signals(*fitted, synthetic(rng, 400, threshold=1.5))
    assert realized < reference - 0.1
    assert not drift.drifted
    assert not estimated.dropped and abs(estimated.metrics["accuracy"].value - reference) < 0.05


# --- beyond the synthetic problem: scikit-learn's breast cancer and diabetes ------------------


def _sklearn_frame(loader) -> pd.DataFrame:
    data = loader(as_frame=True)
    frame = data.frame.rename(columns={"target": "y"})
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True)


def test_a_forest_is_judged_out_of_sample_on_breast_cancer(tmp_path):
    """A forest is right on every row it was fitted on; its cross-validated reference is what
    new rows get, and the estimate of a held-out batch lands within its band of realized."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    from driftloop.config import DataSettings, ModelSettings, Settings

    frame = _sklearn_frame(load_breast_cancer)
    features = [c for c in frame.columns if c != "y"]
    settings = Settings(
        data=DataSettings(
            path=tmp_path / "x.csv", target="y", task="classification", features=features
        ),
        model=ModelSettings(name="cancer"),
        storage={"home": tmp_path},
    )
    train, held_out = frame.iloc[:350], frame.iloc[350:]
    forest = RandomForestClassifier(n_estimators=50, random_state=0).fit(
        train[features], train["y"]
    )
    in_sample = float(np.mean(forest.predict(train[features]) == train["y"]))
    reference = out_of_sample(forest, train, None, settings)
    accuracy = float(np.mean(reference.labelled().eval("prediction == truth")))
    assert in_sample == 1.0 and accuracy < 0.98
    predicted, probabilities = predict_frame(forest, held_out[features], [0, 1])
    realized = float(np.mean(predicted == held_out["y"].astype(str).to_numpy()))
    assert abs(realized - accuracy) < 0.05
    estimated = estimate_performance(
        Calibrator(reference), probabilities, accuracy, MONITORING, predicted
    )
    band = estimated.metrics["accuracy"]
    assert band.low <= realized <= band.high and not estimated.dropped


def test_a_regression_decays_on_diabetes_when_its_errors_grow(tmp_path):
    """MAE against the cross-validated reference: held-out rows as they are do not decay;
    the same rows with the target moved (a concept change) do."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression

    from driftloop.config import DataSettings, ModelSettings, Settings

    frame = _sklearn_frame(load_diabetes)
    features = [c for c in frame.columns if c != "y"]
    settings = Settings(
        data=DataSettings(
            path=tmp_path / "x.csv", target="y", task="regression", features=features
        ),
        model=ModelSettings(name="diabetes"),
        storage={"home": tmp_path},
        monitoring={"alpha": 0.05, "min_drop": 0.1},
    )
    train, held_out = frame.iloc[:300], frame.iloc[300:]
    model = LinearRegression().fit(train[features], train["y"])
    reference = out_of_sample(model, train, None, settings)
    assert reference.probabilities is None and reference.source == "cross-validation"
    errors = np.abs(reference.predictions - reference.truth)
    predicted = model.predict(held_out[features])
    healthy = drop_test(np.abs(predicted - held_out["y"]), errors, MAE, settings.monitoring)
    assert not healthy.decayed, healthy.sentence()
    moved = held_out["y"] + np.where(held_out["bmi"] > 0, 60.0, -60.0)
    decayed = drop_test(np.abs(predicted - moved), errors, MAE, settings.monitoring)
    assert decayed.decayed and decayed.drop > 0.1 * decayed.reference, decayed.sentence()


def test_copies_of_a_row_never_straddle_the_cross_validation(tmp_path):
    """Every breast-cancer row three times over: a fold that held one copy and predicted its
    twin would call the forest perfect; grouped folds keep the reference honest."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    from driftloop.config import DataSettings, ModelSettings, Settings

    frame = _sklearn_frame(load_breast_cancer)
    features = [c for c in frame.columns if c != "y"]
    settings = Settings(
        data=DataSettings(
            path=tmp_path / "x.csv", target="y", task="classification", features=features
        ),
        model=ModelSettings(name="cancer"),
        storage={"home": tmp_path},
    )
    train, held_out = frame.iloc[:350], frame.iloc[350:]
    tripled = pd.concat([train] * 3, ignore_index=True)
    forest = RandomForestClassifier(n_estimators=50, random_state=0)
    forest.fit(tripled[features], tripled["y"])
    reference = out_of_sample(forest, tripled, None, settings)
    accuracy = float(np.mean(reference.labelled().eval("prediction == truth")))
    predicted, _ = predict_frame(forest, held_out[features], [0, 1])
    realized = float(np.mean(predicted == held_out["y"].astype(str).to_numpy()))
    assert accuracy < 0.99 and abs(accuracy - realized) < 0.05


def test_the_estimate_follows_the_models_own_decision_not_the_most_probable_class(fitted):
    """An estimator may answer another class than its most probable one (main's ordinal
    forest does): the estimate is of the answers given. Here every answer is flipped."""
    settings, model, reference, calibrator, _ = fitted
    batch = synthetic(np.random.default_rng(13), 400)
    predicted, probabilities = predict_frame(model, batch[FEATURES], [0, 1])
    flipped = np.where(predicted == "1", "0", "1")
    accuracy = float(np.mean(reference.labelled().eval("prediction == truth")))
    estimated = estimate_performance(
        calibrator, probabilities, accuracy, settings.monitoring, flipped
    )
    realized = float(np.mean(flipped == batch["y"].astype(str).to_numpy()))
    band = estimated.metrics["accuracy"]
    assert realized < 0.3 and abs(band.value - realized) < 0.05 and estimated.dropped


def test_the_gate_holdout_is_not_the_reference(fitted):
    """Issue 27: the holdout a version won its gate on is biased upward (the winner's curse);
    given one, the reference is still cross-validated over the training rows."""
    settings, model, _reference, _calibrator, train = fitted
    holdout = synthetic(np.random.default_rng(5), 400)
    reference = out_of_sample(model, train, holdout, settings)
    assert reference.source == "cross-validation" and reference.rows == len(train)


def test_decay_against_the_winning_holdout_alarms_more_often_than_a_fresh_one():
    """Seeded: a challenger 3 points better than Production (0.77) is staged on a 300-row
    holdout; healthy 300-row batches at its true 0.80, min_drop 0, alpha 0.01. Against an
    independent reference false alarms stay near alpha; against the holdout it won on they
    are more frequent (the full table is in benchmarks/decision_tables_ab.py)."""
    from driftloop.config import TrainingSettings
    from driftloop.gate.simulation import Scenario, paired_rows
    from driftloop.gate.statistics import judge

    rng = np.random.default_rng(27)
    training, monitoring = TrainingSettings(min_holdout=80), MonitoringSettings(min_drop=0.0)
    scenario = Scenario("accuracy", 300, 0.03, accuracy=0.77, discordance=0.2)
    alarms = {"holdout": 0, "fresh": 0}
    staged = 0
    while staged < 600:
        challenger, production = paired_rows(scenario, rng)
        if judge(challenger, production, "accuracy", training).outcome != "staging":
            continue
        staged += 1
        current = (rng.random(300) < 0.80).astype(float)
        fresh = (rng.random(1000) < 0.80).astype(float)
        for name, reference in (("holdout", challenger), ("fresh", fresh)):
            alarms[name] += drop_test(current, reference, ACCURACY, monitoring).decayed
    assert alarms["fresh"] / staged <= monitoring.alpha + 0.012, alarms
    assert alarms["holdout"] > alarms["fresh"], alarms


def test_the_vectorized_macro_f1_is_sklearns_resample_by_resample():
    """The bootstrap counts macro F1 for all resamples at once: each row equals sklearn's
    ``f1_score(average="macro")`` over the classes present in that row (a class missing from
    a resample, or only predicted, as sklearn counts it), and the interval equals the one of
    sklearn called per resample on the same draws."""
    rng = np.random.default_rng(11)
    truth = rng.choice(["5", "6", "7", "8"], (40, 30))
    predicted = np.where(rng.random((40, 30)) < 0.5, truth, rng.choice(["5", "6", "9"], (40, 30)))
    rows = macro_f1_resampled(truth, predicted)
    assert rows == pytest.approx([macro_f1(t, p) for t, p in zip(truth, predicted, strict=True)])
    frame = pd.DataFrame({"prediction": predicted[0], "truth": truth[0]})
    per_resample = stats.bootstrap(
        (predicted[0], truth[0]),
        lambda p, t: macro_f1(t, p),
        paired=True,
        vectorized=False,
        n_resamples=500,
        method="percentile",
        random_state=0,
    ).confidence_interval
    ours = estimate("f1", frame)
    assert (ours.low, ours.high) == pytest.approx((per_resample.low, per_resample.high))
