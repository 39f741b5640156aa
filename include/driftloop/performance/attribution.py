"""Attribution drift: how much each feature drives the Production version's predictions on a
batch (mean absolute SHAP, ``driftloop.scoring.explain``) against how much it did on the version's
holdout, logged when it was trained."""

from __future__ import annotations

import functools
import json
from typing import Any

import pandas as pd

from driftloop.config import Settings

EXPLAINED_ROWS = 200


def attribution_drift(
    settings: Settings, version: str, model: Any, frame: pd.DataFrame, notes: list[str]
) -> dict[str, dict[str, float]] | None:
    """Per feature: mean absolute SHAP on (a sample of) the batch against the version's own,
    logged at training on its holdout, and the change. None, with a note, when the version
    logged none or the model cannot be explained."""
    from driftloop.scoring.explain import explain

    logged = logged_importance(settings.mlflow_tracking_uri, settings.model.name, version)
    if logged is None:
        notes.append(f"version {version} logged no SHAP importances: no attribution drift")
        return None
    names = list(model.schema.names)
    sample = frame.sample(min(len(frame), EXPLAINED_ROWS), random_state=0)
    try:
        current = explain(model.pipeline, sample, names, background=frame).global_importance()
    except Exception as exc:  # an explanation never stops the check
        notes.append(f"no attribution drift: {type(exc).__name__}: {exc}")
        return None
    return {
        name: {
            "reference": logged.get(name, 0.0),
            "current": current[name],
            "change": current[name] - logged.get(name, 0.0),
        }
        for name in names
    }


@functools.lru_cache(maxsize=8)
def logged_importance(tracking_uri: str, name: str, version: str) -> dict[str, float] | None:
    """A version's mean absolute SHAP per feature, logged at training (None: it logged none);
    read once per version (the drift verdict's weights and attribution drift share it)."""
    from driftloop import registry

    try:
        run_id = registry.get(registry.reader(tracking_uri), name, version).run_id
        logged = registry.run_artifact(
            run_id,
            "explanations/global_shap.json",
            lambda path: json.loads(path.read_text(encoding="utf-8")),
            tracking_uri,
        )
    except Exception:  # a version logged before explanations were
        return None
    return {str(k): float(v) for k, v in logged["mean_abs_shap"].items()}
