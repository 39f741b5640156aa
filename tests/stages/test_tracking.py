"""The pip requirements logged with a model come from what its pickle imports (MLflow's own
inference loads the model in a new interpreter, 10 to 30 s of every training)."""

from __future__ import annotations

from importlib.metadata import version

import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from driftloop.stages.tracking import model_requirements


def test_the_requirements_are_the_distributions_the_pickle_imports():
    model = make_pipeline(StandardScaler(), DecisionTreeClassifier(random_state=0))
    model.fit(np.arange(20.0).reshape(10, 2), [0, 1] * 5)
    requirements = model_requirements(model)
    assert f"scikit-learn=={version('scikit-learn')}" in requirements
    assert f"numpy=={version('numpy')}" in requirements  # the fitted arrays
    assert f"cloudpickle=={version('cloudpickle')}" in requirements  # reads the file
    # nothing the model does not import: no stdlib module, no unrelated distribution
    assert all(
        r.split("==")[0] in {"scikit-learn", "numpy", "cloudpickle", "joblib", "scipy"}
        for r in requirements
    ), requirements
