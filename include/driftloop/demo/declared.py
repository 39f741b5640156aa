"""The models of ``driftloop demo --models N`` (:mod:`driftloop.demo.models`): a config with a
``models:`` map, written from the demo's own file so that every setting of ``make demo``
(training budget, A/B sizes, polling) holds for each model, and the data of the one model that
is not wine.

| model | data | task | what happens |
| --- | --- | --- | --- |
| ``white_wine`` | white wine (``make demo``'s) | classification | drift planted: the whole loop |
| ``red_wine`` | red wine | classification | one clean batch; keeps Production |
| ``diabetes`` | scikit-learn's diabetes set | regression (MAE) | a clean batch; keeps Production |

The models that do not drift train one learner only (their first version is all they need).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MODELS = ("white_wine", "red_wine", "diabetes")
DRIFTING = "white_wine"
"""The model the demo's concept shift is planted in (the stream ``make demo`` lands)."""
DIABETES_TARGET = "progression"  # disease progression one year after baseline
DIABETES_FEATURES = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
QUIET_TRAINING = {"models": ["lr"]}  # the models that keep Production train one learner
SHARED_DATA = ("format", "max_missing_share", "categorical_features", "nullable_features")


def write_config(base: Path, home: Path, names: tuple[str, ...] = MODELS) -> Path:
    """``home/driftloop.yaml``: the sections of ``base`` (the demo's config) for every model,
    and a ``models:`` entry for each of ``names`` with its own data section (data paths made
    absolute). The diabetes set is written to ``home/data`` when it is one of them."""
    document = yaml.safe_load(base.read_text()) or {}
    document.pop("model", None)  # a model's name is its key under models:
    wine = document.pop("data")
    for key in ("path", "drift_source"):
        if wine.get(key):
            wine[key] = str((base.parent / wine[key]).resolve())
    document["data"] = {key: wine[key] for key in SHARED_DATA if key in wine}
    red = {**wine, "path": str(Path(wine["path"]).with_name("winequality-red.csv"))}
    red.pop("drift_source", None)
    entries: dict[str, dict[str, Any]] = {
        "white_wine": {"data": wine},
        "red_wine": {"data": red, "training": QUIET_TRAINING},
    }
    if "diabetes" in names:
        entries["diabetes"] = {
            "data": diabetes_data(home / "data"),
            # 442 rows: half as the first version's training data, batches of 100
            "stream": {"reference_share": 0.5, "batch_size": 100},
            "training": QUIET_TRAINING,
        }
    document["models"] = {name: entries[name] for name in names}
    config = home / "driftloop.yaml"
    config.write_text(
        "# Written by `driftloop demo --models` from the demo's config; rewritten every run.\n"
        + yaml.safe_dump(document, sort_keys=False)
    )
    return config


def diabetes_data(folder: Path) -> dict[str, Any]:
    """scikit-learn's bundled diabetes set (no download) as a CSV in ``folder``, in its
    original units; the data section that reads it."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame
    frame = frame.rename(columns={"target": DIABETES_TARGET})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "diabetes.csv"
    frame.to_csv(path, index=False)
    return {
        "path": str(path),
        "separator": ",",
        "target": DIABETES_TARGET,
        "task": "regression",
        "features": list(DIABETES_FEATURES),
        "bounds": {"age": {"min": 0}, "bmi": {"min": 0}, DIABETES_TARGET: {"min": 0}},
    }
