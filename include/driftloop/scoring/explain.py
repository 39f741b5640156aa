"""Explanations: SHAP values per original feature, for a version's pipeline.

The pipeline's preprocessing is applied first, then the estimator is explained on the columns it
sees, and the columns are summed back to the feature each came from (one-hot columns to their
categorical feature, a prefix ``name__`` of a scikit-learn transformer ignored). Per record the
values explain the predicted class (a classifier) or the value (a regression), in the model's
margin units; the global importance of a feature is its mean absolute value over the records.

Which explainer: xgboost and lightgbm explain themselves, exactly (TreeSHAP built into the
library: ``pred_contribs`` / ``pred_contrib``): shap 0.49, the last release that works with the
locked numpy 1.26, cannot read models of xgboost 3.1 and later. Other trees: shap's exact
``TreeExplainer``; linear models: its ``LinearExplainer``. Anything else gets the documented,
bounded fallback: shap's ``PermutationExplainer`` on at most ``BACKGROUND_ROWS`` background
rows and ``2 * features + 1`` evaluations per record: approximate, said in ``method``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

BACKGROUND_ROWS = 50
EXACT, APPROXIMATE = "exact", "approximate"


@dataclass(frozen=True)
class Attributions:
    """SHAP values of ``records`` rows (rows x ``features``) and how they were computed."""

    features: list[str]
    values: np.ndarray
    method: str
    quality: str  # exact or approximate

    def global_importance(self) -> dict[str, float]:
        """Mean absolute SHAP value per feature, largest first."""
        means = (
            np.abs(self.values).mean(axis=0) if len(self.values) else np.zeros(len(self.features))
        )
        order = np.argsort(-means, kind="stable")
        return {self.features[i]: float(means[i]) for i in order}

    def records(self) -> list[dict[str, float]]:
        return [dict(zip(self.features, map(float, row), strict=True)) for row in self.values]


def explain(
    pipeline: Any,
    frame: pd.DataFrame,
    features: list[str],
    background: pd.DataFrame | None = None,
) -> Attributions:
    """SHAP values of ``frame`` (its ``features`` columns) per original feature."""
    prepare, estimator = _split(pipeline)
    inputs = frame[features]
    transformed = _frame(prepare, inputs)
    raw, method, quality = _contributions(estimator, transformed, prepare, background, features)
    raw = _of_prediction(raw, estimator, transformed)
    owners = [owner(str(c), features) for c in transformed.columns]
    values = np.zeros((len(frame), len(features)))
    for column, name in enumerate(owners):
        if name is not None:
            values[:, features.index(name)] += raw[:, column]
    return Attributions(list(features), values, method, quality)


def owner(column: str, features: list[str]) -> str | None:
    """The original feature a transformed column came from (None: made from several)."""
    name = column.split("__", 1)[1] if "__" in column else column
    if name in features:
        return name
    matches = [f for f in features if name.startswith(f"{f}_")]
    return max(matches, key=len) if matches else None


def _split(pipeline: Any) -> tuple[Any | None, Any]:
    steps = getattr(pipeline, "steps", None)
    if not steps:
        return None, pipeline
    return (pipeline[:-1] if len(steps) > 1 else None), steps[-1][1]


def _frame(prepare: Any | None, inputs: pd.DataFrame) -> pd.DataFrame:
    if prepare is None:
        return inputs
    out = prepare.transform(inputs)
    if isinstance(out, pd.DataFrame):
        return out
    out = out.toarray() if hasattr(out, "toarray") else np.asarray(out)
    return pd.DataFrame(out, columns=[str(c) for c in prepare.get_feature_names_out()])


def _contributions(
    estimator: Any,
    transformed: pd.DataFrame,
    prepare: Any | None,
    background: pd.DataFrame | None,
    features: list[str],
) -> tuple[np.ndarray, str, str]:
    """Raw SHAP values: rows x columns, or rows x classes x columns."""
    module = type(estimator).__module__
    if hasattr(estimator, "get_booster"):  # xgboost's own TreeSHAP
        import xgboost

        values = estimator.get_booster().predict(
            xgboost.DMatrix(transformed), pred_contribs=True, validate_features=False
        )
        return _without_bias(values), "xgboost pred_contribs (TreeSHAP)", EXACT
    if module.startswith("lightgbm"):
        values = np.asarray(estimator.predict(transformed, pred_contrib=True))
        width = transformed.shape[1] + 1
        if values.shape[1] > width:  # multiclass: classes side by side
            values = values.reshape(len(values), -1, width)
        return _without_bias(values), "lightgbm pred_contrib (TreeSHAP)", EXACT
    import shap

    if hasattr(estimator, "tree_") or hasattr(estimator, "estimators_"):
        try:
            values = shap.TreeExplainer(estimator).shap_values(transformed, check_additivity=False)
            return _classes_first(values), "shap TreeExplainer", EXACT
        except Exception:  # an ensemble TreeExplainer does not know: the fallback below
            pass
    reference = _background(
        transformed if background is None else _frame(prepare, background[features])
    )
    if hasattr(estimator, "coef_"):
        values = shap.LinearExplainer(estimator, reference.to_numpy(dtype=float)).shap_values(
            transformed.to_numpy(dtype=float)
        )
        return _classes_first(values), "shap LinearExplainer", EXACT
    predict = getattr(estimator, "predict_proba", estimator.predict)
    explainer = shap.PermutationExplainer(
        lambda x: predict(pd.DataFrame(x, columns=transformed.columns)),
        reference.to_numpy(dtype=float),
    )
    explanation = explainer(
        transformed.to_numpy(dtype=float), max_evals=2 * transformed.shape[1] + 1, silent=True
    )
    return _classes_first(explanation.values), "shap PermutationExplainer (bounded)", APPROXIMATE


def _background(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sample(min(len(frame), BACKGROUND_ROWS), random_state=0) if len(frame) else frame


def _without_bias(values: np.ndarray) -> np.ndarray:
    return values[..., :-1]


def _classes_first(values: Any) -> np.ndarray:
    """shap's shapes (a list per class, or rows x columns x classes) as rows x classes x
    columns; a single output stays rows x columns."""
    if isinstance(values, list):
        return np.stack(values, axis=1)
    values = np.asarray(values)
    return np.transpose(values, (0, 2, 1)) if values.ndim == 3 else values


def _of_prediction(raw: np.ndarray, estimator: Any, transformed: pd.DataFrame) -> np.ndarray:
    """Per record, the values of the class the estimator answers (a single margin of a binary
    classifier explains class 1: its opposite explains class 0)."""
    if not hasattr(estimator, "predict_proba"):
        return raw if raw.ndim == 2 else raw[:, 0, :]
    known = list(getattr(estimator, "classes_", []))
    answers = np.asarray(estimator.predict(transformed))
    if known and all(a in known for a in answers):  # the class it answers (an ordinal forest
        predicted = np.array([known.index(a) for a in answers])  # may not answer the likeliest)
    else:
        predicted = np.asarray(estimator.predict_proba(transformed)).argmax(axis=1)
    if raw.ndim == 3:
        return raw[np.arange(len(raw)), predicted, :]
    return np.where((predicted == 1)[:, None], raw, -raw)
