"""Small, fast models and data for the performance tests: a synthetic classification problem
whose answer is known (a categorical column and missing values among its inputs), and
settings that describe it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from driftloop.config import DataSettings, ModelSettings, Settings

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
