"""Small, fast models and data for the performance tests: a synthetic classification problem
whose answer is known (a categorical column and missing values among its inputs), and
settings that describe it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from driftloop.config import DataSettings, ModelSettings, Settings
from driftloop.stages import role_moves

FEATURES = ["signal", "noise", "colour", "gappy"]


def synthetic(
    rng: np.random.Generator,
    n: int,
    signal_scale: float = 2.0,
    noise_shift: float = 0.0,
    threshold: float = 0.0,
) -> pd.DataFrame:
    """``y`` is 1 when ``signal`` plus a little noise passes ``threshold``; ``noise``, ``colour``
    and ``gappy`` (10% missing) carry nothing. A small ``signal_scale`` puts rows near the
    boundary, where the model is unsure; ``threshold`` moves the concept, not the inputs."""
    signal = rng.normal(0.0, signal_scale, n)
    gappy = rng.normal(0.0, 1.0, n)
    gappy[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "signal": signal,
            "noise": rng.normal(noise_shift, 1.0, n),
            "colour": rng.choice(["red", "green", "blue"], n),
            "gappy": gappy,
            "y": (signal + rng.normal(0.0, 0.7, n) > threshold).astype(int),
        }
    )


def synthetic_settings(home: Path, task: str = "classification", **sections) -> Settings:
    data = DataSettings(
        path=home / "unused.csv",
        target="y",
        task=task,
        features=FEATURES,
        categorical_features=["colour"],
        **sections.pop("data", {}),
    )
    return Settings(
        data=data, model=ModelSettings(name="synthetic"), storage={"home": home}, **sections
    )


def pipeline(task: str = "classification"):
    """Imputation, one-hot colour, then logistic (or linear) regression: scikit-learn only."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    prepare = ColumnTransformer(
        [
            ("numbers", SimpleImputer(), ["signal", "noise", "gappy"]),
            ("colour", OneHotEncoder(handle_unknown="ignore"), ["colour"]),
        ]
    )
    model = LogisticRegression() if task == "classification" else LinearRegression()
    return make_pipeline(prepare, model)


def register_production(
    settings: Settings, engine, train: pd.DataFrame, task: str = "classification"
) -> str:
    """Fit the pipeline on ``train``, log it with its training rows and signature, register it
    as Production and keep its cross-validated reference, as retraining does."""
    import tempfile

    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    from driftloop import registry
    from driftloop.performance.reference import out_of_sample
    from driftloop.stages.performance_reference import attach_version, store_reference
    from driftloop.stages.reference_profiles import profile_from_frame, store_profile

    client = registry.configure(settings)
    role_moves.ensure_registered_model(client, settings.model.name)
    model = pipeline(task).fit(train[FEATURES], train["y"])
    example = train[FEATURES].head(5)
    with mlflow.start_run(), tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "train.csv"
        train.to_csv(path, index=False)
        mlflow.log_artifact(str(path), artifact_path="training_data")
        from driftloop.scoring.explain import explain

        importance = explain(model, train.head(200), FEATURES, background=train).global_importance()
        mlflow.log_dict({"mean_abs_shap": importance}, "explanations/global_shap.json")
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            serialization_format="cloudpickle",
            signature=infer_signature(example, model.predict(example)),
            input_example=example,
        )
    version = str(mlflow.register_model(info.model_uri, settings.model.name).version)
    role_moves.set_role(client, settings.model.name, version, registry.PRODUCTION)
    reference_id = store_reference(settings, engine, out_of_sample(model, train, None, settings))
    attach_version(engine, reference_id, version)
    profile = profile_from_frame(train, settings, "training rows")
    store_profile(settings, engine, profile, "model", model_version=version)
    return version


def land(settings: Settings, frame: pd.DataFrame, hour: int, day: int = 1) -> None:
    """Write ``frame`` into the landing folder as a batch taken at that hour of January 2026."""
    folder = settings.storage.landing_dir
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(
        folder / f"batch-{day:02d}{hour:02d}-202601{day:02d}T{hour:02d}0000Z.csv", index=False
    )


def known_reference(
    settings: Settings, engine, version: str, accuracy: float, rows: int = 500
) -> None:
    """A reference of a chosen out-of-sample accuracy for a version registered without one
    (``registry_home``'s): labels 5, 6 and 7, as the simulated A/B traffic uses."""
    from driftloop.performance.reference import ReferencePredictions
    from driftloop.stages.performance_reference import attach_version, store_reference

    truth = np.array(["5", "6", "7"] * (rows // 3 + 1), dtype=object)[:rows]
    predictions = truth.copy()
    wrong = round(rows * (1 - accuracy))
    predictions[:wrong] = "8"
    reference = ReferencePredictions("gate holdout", truth, predictions)
    attach_version(engine, store_reference(settings, engine, reference), version)
