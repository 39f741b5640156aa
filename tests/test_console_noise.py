"""One line per step on the console (issue 28): MLflow draws no progress bar when driftloop
downloads a model, and a LightGBM model driftloop trained prints nothing when it is refit
(the performance reference refits it per fold, outside PyCaret's own output capture)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from driftloop import registry
from driftloop.scoring.model import load_version
from driftloop.training.automl import _quiet_lightgbm
from tests.support.registry_home import register_versions


def test_model_downloads_draw_no_progress_bar(settings, monkeypatch, capfd):
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    (version,) = register_versions(settings, 1)
    registry.configure(settings)
    capfd.readouterr()
    load_version(settings, version)  # a model folder: several files, one bar per download
    out, err = capfd.readouterr()
    assert "Downloading artifacts" not in out + err
    assert "%|" not in err  # any tqdm bar


def _rare_class_data() -> tuple[pd.DataFrame, np.ndarray]:
    """A class with 3 rows: its trees cannot split (LightGBM warns "No further splits")."""
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    target = np.where(frame["a"] > 0, 1, 0)
    target[:3] = 2
    return frame, target


def test_a_refit_lightgbm_model_prints_nothing(capfd):
    frame, target = _rare_class_data()
    pipeline = Pipeline([("model", LGBMClassifier(n_estimators=5, random_state=0, n_jobs=1))])
    clone(pipeline).fit(frame, target)
    out, _ = capfd.readouterr()
    assert "No further splits" in out  # what the console showed before

    pipeline.fit(frame, target)
    _quiet_lightgbm(pipeline)
    capfd.readouterr()
    clone(pipeline).fit(frame, target)
    out, err = capfd.readouterr()
    assert "[LightGBM]" not in out + err
