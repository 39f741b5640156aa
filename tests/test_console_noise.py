"""One line per step on the console (issue 28): MLflow draws no progress bar when driftloop
downloads a model, and a LightGBM model driftloop trained prints nothing when it is refit
(the performance reference refits it per fold, outside PyCaret's own output capture)."""

from __future__ import annotations

import subprocess
import sys

from driftloop import registry
from driftloop.scoring.model import load_version
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


# In a fresh interpreter: LightGBM prints its native messages through a logger and a callback
# that other tests in this process may have changed (PyCaret fits redirect fds 1 and 2), so a
# refit seen here could be quiet for a reason that is not the fix.
REFIT = """
import numpy as np, pandas as pd
from lightgbm import LGBMClassifier
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from driftloop.training.automl import _quiet_lightgbm

rng = np.random.default_rng(7)
frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
target = np.where(frame["a"] > 0, 1, 0)
target[:3] = 2  # a class with 3 rows: its trees cannot split ("No further splits")
pipeline = Pipeline([("model", LGBMClassifier(n_estimators=5, random_state=0, n_jobs=1))])
clone(pipeline).fit(frame, target)
print("=== quieted", flush=True)
pipeline.fit(frame, target)
_quiet_lightgbm(pipeline)
print("=== refit", flush=True)
clone(pipeline).fit(frame, target)
"""


def test_a_refit_lightgbm_model_prints_nothing():
    done = subprocess.run(
        [sys.executable, "-c", REFIT], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    before, rest = done.stdout.split("=== quieted\n")
    refit = rest.split("=== refit\n")[1]
    assert "No further splits" in before  # what the console showed before
    assert "[LightGBM]" not in refit and "[LightGBM]" not in done.stderr
