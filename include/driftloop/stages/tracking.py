"""MLflow tracking of a training run, done by hand (PyCaret's ``log_experiment`` is broken on
MLflow 3): parameters, the compare table, CV and holdout metrics, plots, data digest and row
count, library versions, signature and input example, the features the training rows left
missing, and the model (cloudpickle, because MLflow 3's default skops format refuses PyCaret's
pipeline types) with the pip requirements its pickle imports.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import tempfile
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from driftloop.config import Settings
from driftloop.registry import NULLABLE_FEATURES, run_artifact
from driftloop.task import task_of
from driftloop.training.automl import TrainedModel

if TYPE_CHECKING:
    from driftloop.drift.profile import ReferenceProfile

LIBRARIES = ("pycaret", "scikit-learn", "pandas", "numpy", "mlflow", "driftloop")


def data_digest(frame: pd.DataFrame) -> str:
    """A digest of the training rows (order-independent), the version's data identity."""
    keys = pd.util.hash_pandas_object(frame, index=False).sort_values().to_numpy()
    return hashlib.sha256(keys.tobytes()).hexdigest()


def log_training_run(
    trained: TrainedModel,
    training_frame: pd.DataFrame,
    holdout: pd.DataFrame | None,
    settings: Settings,
    digest: str,
    extra_params: dict[str, Any],
    profile: ReferenceProfile,
    run_name: str,
) -> tuple[str, str]:
    """Log everything about one training, the version's drift reference profile among it;
    return (run id, logged model URI)."""
    import mlflow
    from mlflow.models import infer_signature

    features = training_frame[settings.feature_columns]
    with mlflow.start_run(run_name=run_name) as run, tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        mlflow.log_params(
            {
                "task": settings.data.task,
                "target": settings.data.target,
                "models": ",".join(settings.training.models) or "pycaret-default",
                "folds": settings.training.folds,
                "optimize": trained.metric,
                "budget_minutes": settings.training.budget_minutes,
                "best_model": trained.model_name,
                "dropped_classes": ",".join(trained.dropped_classes) or "none",
                **extra_params,
            }
        )
        nullable = missing_features(features)
        mlflow.set_tags(
            {
                "driftloop.data_digest": digest,
                NULLABLE_FEATURES: json.dumps(nullable),
                **{f"version.{lib}": _version(lib) for lib in LIBRARIES},
            }
        )
        mlflow.log_metrics({f"cv_{_key(k)}": v for k, v in trained.cv_metrics.items()})
        mlflow.log_metrics({f"holdout_{_key(k)}": v for k, v in trained.holdout_metrics.items()})
        mlflow.log_metrics(
            {
                "training_rows": len(training_frame),
                "gate_holdout_rows": 0 if holdout is None else len(holdout),
            }
        )
        trained.compare_table.to_csv(out / "compare_models.csv")
        mlflow.log_artifact(str(out / "compare_models.csv"))
        training_frame.to_csv(out / "train.csv", index=False)
        mlflow.log_artifact(str(out / "train.csv"), artifact_path="training_data")
        profile.save(out / "profile.npz")
        mlflow.log_artifact(str(out / "profile.npz"), artifact_path="profile")
        evaluation = holdout if holdout is not None and len(holdout) else training_frame.tail(500)
        for plot in _plots(trained.pipeline, evaluation, settings, out):
            mlflow.log_artifact(str(plot), artifact_path="plots")
        _log_explanations(trained.pipeline, evaluation, settings, out)
        example = features.head(5)
        signature = infer_signature(example, trained.pipeline.predict(example))
        info = mlflow.sklearn.log_model(
            trained.pipeline,
            name="model",
            serialization_format="cloudpickle",
            signature=signature,
            input_example=example,
            metadata={NULLABLE_FEATURES: nullable},
            pip_requirements=model_requirements(trained.pipeline),
        )
        return run.info.run_id, info.model_uri


def model_requirements(model: Any) -> list[str]:
    """The distributions that loading ``model`` imports, pinned to the installed versions.

    Left to itself, MLflow infers them by loading the model in a new interpreter and reading
    the metadata of every installed distribution: 10 to 30 s of each training on a 2-core
    machine. The pickle already names every module it imports; their top-level packages map
    to distributions, and cloudpickle, which wrote it, is needed to read it.
    """
    from importlib.metadata import packages_distributions

    import cloudpickle

    modules: set[str] = set()

    class _Recording(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            modules.add(module.partition(".")[0])
            return super().find_class(module, name)

    _Recording(io.BytesIO(cloudpickle.dumps(model))).load()
    owners = packages_distributions()
    names = {"cloudpickle"} | {owner for module in modules for owner in owners.get(module, [])}
    return sorted(f"{name}=={package_version(name)}" for name in names)


def logged_training_data(run_id: str, tracking_uri: str | None = None) -> pd.DataFrame:
    """The training rows a run logged (``training_data/train.csv``), read from ``tracking_uri``
    (default: where :func:`driftloop.registry.configure` pointed MLflow)."""
    return run_artifact(run_id, "training_data/train.csv", pd.read_csv, tracking_uri)


def missing_features(features: pd.DataFrame) -> list[str]:
    """The features with a missing value in the training rows: the model's pipeline learned to
    impute them, so the server lets requests leave them missing."""
    return [str(name) for name in features.columns[features.isna().any().to_numpy()]]


def _key(metric: str) -> str:
    return metric.lower().replace(" ", "_").replace(".", "").replace("(", "").replace(")", "")


def _version(library: str) -> str:
    try:
        return package_version(library)
    except Exception:
        return "unknown"


def _plots(pipeline: Any, frame: pd.DataFrame, settings: Settings, out: Path) -> list[Path]:
    """The task's plot of predictions (confusion matrix or residuals) and permutation feature
    importance, as PNG files."""
    from sklearn.inspection import permutation_importance

    from driftloop.reports.rendering import pyplot

    plt = pyplot()

    task = task_of(settings)
    features, truth = frame[settings.feature_columns], frame[settings.data.target]
    predicted = pipeline.predict(features)
    paths = []
    figure, axes = plt.subplots(figsize=(5, 4), dpi=100)
    name = task.plot_predictions(axes, truth, predicted)
    figure.tight_layout()
    figure.savefig(out / name)
    plt.close(figure)
    paths.append(out / name)

    importance = permutation_importance(
        pipeline,
        features,
        truth,
        scoring=task.importance_scorer(),
        n_repeats=3,
        random_state=settings.training.seed,
    )
    order = importance.importances_mean.argsort()
    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    axes.barh([settings.feature_columns[i] for i in order], importance.importances_mean[order])
    axes.set_title("Permutation feature importance")
    figure.tight_layout()
    figure.savefig(out / "feature_importance.png")
    plt.close(figure)
    paths.append(out / "feature_importance.png")
    return paths


EXPLAINED_ROWS = 200


def _log_explanations(pipeline: Any, frame: pd.DataFrame, settings: Settings, out: Path) -> None:
    """Global SHAP importances (mean absolute SHAP per original feature) on a sample of the
    gate holdout, or of the training rows without one, as JSON and a plot. An explanation that
    fails is logged as a warning: it never stops a version from registering."""
    import logging

    import mlflow

    from driftloop.reports.rendering import pyplot
    from driftloop.scoring.explain import explain

    sample = frame.sample(min(len(frame), EXPLAINED_ROWS), random_state=settings.training.seed)
    try:
        attributions = explain(pipeline, sample, settings.feature_columns, background=frame)
    except Exception as exc:
        logging.getLogger(__name__).warning("no SHAP explanation for this run: %s", exc)
        return
    importance = attributions.global_importance()
    mlflow.log_dict(
        {
            "method": attributions.method,
            "quality": attributions.quality,
            "rows": len(sample),
            "mean_abs_shap": importance,
        },
        "explanations/global_shap.json",
    )
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    names = list(importance)[::-1]
    axes.barh(names, [importance[n] for n in names])
    axes.set_title(f"Mean |SHAP| per feature ({attributions.method})", fontsize=9)
    figure.tight_layout()
    figure.savefig(out / "shap_importance.png")
    plt.close(figure)
    mlflow.log_artifact(str(out / "shap_importance.png"), artifact_path="plots")
