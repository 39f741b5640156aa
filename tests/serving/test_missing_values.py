"""Missing values in serving: a version trained on rows with gaps takes JSON null (or an absent
key) for those features, numeric and categorical, and the model sees NaN; anything else
missing is a 422 naming the feature. The log and /metrics say what was missing.

The unit tests use a schema by hand; the rest a real PyCaret model trained on generated data
with missing values (small, so training takes seconds).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from driftloop import registry
from driftloop.database import open_database
from driftloop.settings_loader import load_settings
from driftloop.stages import role_moves
from driftloop.storage import Prediction, session_scope
from serving.models import FeatureSchema
from serving.validation import RequestError, checked_records
from tests.conftest import ROOT

SCHEMA = FeatureSchema(
    ("a", "b", "c", "color"), frozenset({"a", "b", "c"}), frozenset({"a", "color"})
)


def test_null_and_absent_nullable_features_become_nan_numeric_and_categorical():
    records = [
        {"a": None, "b": 1, "c": 2.5, "color": None},
        {"b": 2, "c": 3, "color": "red"},  # a absent
        {"a": 1.5, "b": 3, "c": 4, "color": "blue"},
    ]
    checked = checked_records(records, SCHEMA, 10, set())
    frame = checked.frame
    assert list(frame.columns) == ["a", "b", "c", "color"]
    assert (
        np.isnan(frame["a"].iloc[0]) and np.isnan(frame["a"].iloc[1]) and frame["a"].iloc[2] == 1.5
    )
    first = frame["color"].iloc[0]  # a float NaN (not None): what scikit-learn's imputers look for
    assert isinstance(first, float) and np.isnan(first) and frame["color"].iloc[1] == "red"
    assert checked.missing_names() == [["a", "color"], ["a"], None]


@pytest.mark.parametrize(
    ("record", "fragment"),
    [
        (
            {"a": 1, "b": None, "c": 1, "color": "red"},
            "field 'b' is missing (null), and this model version",
        ),
        ({"a": 1, "c": 1, "color": "red"}, "missing field 'b'"),
        ({"a": float("nan"), "b": 1, "c": 1, "color": "red"}, "field 'a' is not a finite number"),
        ({"a": "1", "b": 1, "c": 1, "color": "red"}, "field 'a' is not a number"),
        ({"a": 1, "b": 1, "c": 1, "color": 3}, "field 'color' is not a string"),
    ],
)
def test_what_the_version_cannot_take_missing_is_named(record, fragment):
    with pytest.raises(RequestError) as refused:
        checked_records([record], SCHEMA, 10, set())
    assert refused.value.status == 422
    assert fragment in " ".join([refused.value.message, *refused.value.details])


def test_a_record_missing_more_than_the_share_is_refused():
    record = {"a": None, "b": 1, "c": 1, "color": None}  # 2 of 4 missing
    checked_records([record], SCHEMA, 10, set(), max_missing_share=0.5)
    with pytest.raises(
        RequestError, match=r"more than serving.max_missing_share \(0.25\)"
    ) as refused:
        checked_records([record], SCHEMA, 10, set(), max_missing_share=0.25)
    assert refused.value.details == ["record 0: 2 of 4 features missing"]


# --- a real model trained on data with gaps ---------------------------------------------------


def _gappy_data(path, rows: int = 600) -> None:
    """Two classes from a numeric and a categorical feature, with gaps in a, b and color."""
    rng = np.random.default_rng(7)
    a, b, c = rng.normal(size=rows), rng.normal(size=rows), rng.normal(size=rows)
    color = rng.choice(["red", "green", "blue"], size=rows).astype(object)
    label = ((a + (color == "red") * 1.5 + 0.3 * rng.normal(size=rows)) > 0.5).astype(int)
    frame = pd.DataFrame({"a": a, "b": b, "c": c, "color": color, "label": label})
    for column, share in (("a", 0.1), ("b", 0.05), ("color", 0.1)):
        frame.loc[rng.random(rows) < share, column] = np.nan
    frame.to_csv(path, index=False)


@pytest.fixture(scope="module")
def gappy(tmp_path_factory):
    """Settings for the generated data, bootstrapped: version 1 in Production."""
    from driftloop.stages import retrain as steps

    saved = {
        k: os.environ.pop(k)
        for k in list(os.environ)
        if k.startswith("DRIFTLOOP_") and k != "DRIFTLOOP_TEST_POSTGRES_URL"
    }
    home = tmp_path_factory.mktemp("gappy")
    _gappy_data(home / "gappy.csv")
    try:
        config = yaml.safe_load((ROOT / "driftloop.yaml").read_text())
        config["data"] = {
            "path": str(home / "gappy.csv"),
            "target": "label",
            "task": "classification",
            "features": ["a", "b", "c", "color"],
            "categorical_features": ["color"],
        }
        config["storage"]["home"] = str(home / "home")
        config["training"].update(models=["lr", "dt"], folds=2, budget_minutes=0.5)
        (home / "gappy.yaml").write_text(yaml.safe_dump(config))
        settings = load_settings(home / "gappy.yaml")
        engine = open_database(settings)
        steps.bootstrap(settings, engine)
        yield settings, engine
    finally:
        os.environ.update(saved)


def _app(settings):
    from serving.app import create_app

    return create_app(settings, background=False)


def test_the_version_records_the_features_its_training_data_left_missing(gappy):
    import mlflow
    from mlflow.models import Model

    settings, _ = gappy
    client = registry.configure(settings)
    version = client.get_model_version(settings.model.name, "1")
    assert json.loads(client.get_run(version.run_id).data.tags[registry.NULLABLE_FEATURES]) == [
        "a",
        "b",
        "color",
    ]
    local = mlflow.artifacts.download_artifacts(f"models:/{settings.model.name}/1")
    assert Model.load(local).metadata[registry.NULLABLE_FEATURES] == ["a", "b", "color"]


def test_null_reaches_the_model_as_nan_and_the_log_and_metrics_say_so(gappy):
    import mlflow.sklearn

    settings, engine = gappy
    app = _app(settings)
    client = app.test_client()
    try:
        before = _missing_count(client, "a"), _missing_count(client, "color")
        records = [
            {"a": None, "b": 0.2, "c": -1.0, "color": None},
            {"b": 0.2, "c": -1.0, "color": "red"},  # a absent
            {"a": 2.0, "b": None, "c": 0.0, "color": "green"},
        ]
        answer = client.post("/predict", json={"records": records})
        assert answer.status_code == 200, answer.json
        pipeline = mlflow.sklearn.load_model(f"models:/{settings.model.name}/1")
        direct = pd.DataFrame(
            {"a": [np.nan, np.nan, 2.0], "b": [0.2, 0.2, np.nan], "c": [-1.0, -1.0, 0.0],
             "color": [np.nan, "red", "green"]}
        )  # fmt: skip
        expected = pipeline.predict_proba(direct)
        served = [
            [p["probabilities"][k] for k in sorted(p["probabilities"])]
            for p in answer.json["predictions"]
        ]
        np.testing.assert_allclose(served, expected, rtol=1e-9)
        assert _missing_count(client, "a") == before[0] + 2
        assert _missing_count(client, "color") == before[1] + 1
        app.extensions["driftloop"]["log"].close()
        with session_scope(engine) as session:
            logged = session.scalars(
                sa.select(Prediction)
                .where(Prediction.request_id == answer.json["request_id"])
                .order_by(Prediction.record_id)
            ).all()
            assert [row.missing for row in logged] == [["a", "color"], ["a"], ["b"]]
    finally:
        app.extensions["driftloop"]["shutdown"]()


def _missing_count(client, feature: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True)):
        for sample in family.samples:
            if sample.name == "driftloop_missing_values_total" and sample.labels == {
                "model": client.application.extensions["driftloop"]["settings"].model.name,
                "feature": feature,
            }:
                return sample.value
    return 0.0


def test_a_feature_without_gaps_in_training_gets_a_422_naming_it(gappy):
    settings, _ = gappy
    app = _app(settings)
    try:
        client = app.test_client()
        assert client.get("/models").json["variants"]["production"]["nullable"] == [
            "a",
            "b",
            "color",
        ]
        null_c = client.post(
            "/predict", json={"record": {"a": 1.0, "b": 1.0, "c": None, "color": "red"}}
        )
        assert null_c.status_code == 422 and "field 'c' is missing (null)" in str(null_c.json)
        absent_c = client.post("/predict", json={"record": {"a": 1.0, "b": 1.0, "color": "red"}})
        assert absent_c.status_code == 422 and "missing field 'c'" in str(absent_c.json)
        nan = client.post(
            "/predict",
            data='{"record": {"a": NaN, "b": 1, "c": 1, "color": "red"}}',
            content_type="application/json",
        )
        assert nan.status_code == 422 and "field 'a' is not a finite number" in str(nan.json)
        too_many = client.post(
            "/predict", json={"record": {"a": None, "b": None, "c": 1.0, "color": None}}
        )
        assert too_many.status_code == 422 and "max_missing_share" in too_many.json["error"]
    finally:
        app.extensions["driftloop"]["shutdown"]()


def test_configured_nullable_features_and_a_version_registered_without_the_record(gappy):
    """``data.nullable_features`` adds to any version's set; a version whose model carries no
    record (registered by hand, say) takes missing values only for those."""
    import mlflow
    import mlflow.sklearn

    settings, _ = gappy
    client = registry.configure(settings)
    pipeline = mlflow.sklearn.load_model(f"models:/{settings.model.name}/1")
    example = pd.DataFrame({"a": [1.0], "b": [1.0], "c": [1.0], "color": ["red"]})
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            pipeline, name="model", serialization_format="cloudpickle", input_example=example,
            signature=mlflow.models.infer_signature(example, pipeline.predict(example)),
        )  # fmt: skip
    bare = str(mlflow.register_model(info.model_uri, settings.model.name).version)
    role_moves.set_role(client, settings.model.name, bare, registry.PRODUCTION)
    configured = settings.model_copy(
        update={"data": settings.data.model_copy(update={"nullable_features": ["c", "a"]})}
    )
    try:
        for current, a_allowed in ((settings, False), (configured, True)):
            app = _app(current)
            try:
                test = app.test_client()
                assert app.extensions["driftloop"]["store"].snapshot.production.version == bare
                a_null = test.post(
                    "/predict", json={"record": {"a": None, "b": 1.0, "c": 1.0, "color": "red"}}
                )
                assert (a_null.status_code == 200) == a_allowed, a_null.json
                color_null = test.post(
                    "/predict", json={"record": {"a": 1.0, "b": 1.0, "c": 1.0, "color": None}}
                )
                assert color_null.status_code == 422 and "field 'color' is missing" in str(
                    color_null.json
                )
                c_null = test.post(
                    "/predict", json={"record": {"a": 1.0, "b": 1.0, "c": None, "color": "red"}}
                )
                assert (c_null.status_code == 200) == a_allowed, (
                    c_null.json
                )  # imputed though unseen
            finally:
                app.extensions["driftloop"]["shutdown"]()
    finally:
        role_moves.set_role(client, settings.model.name, "1", registry.PRODUCTION)


def test_batch_scoring_takes_empty_cells_where_the_version_allows_them(gappy, tmp_path):
    """A file with empty cells: numeric and categorical features the version trained with gaps
    reach it as NaN; an empty cell where it had none sets that row aside, naming the field."""
    from driftloop.scoring.model import load_version
    from driftloop.stages.batch_scoring import score_file

    settings, engine = gappy
    path = tmp_path / "gaps.csv"
    path.write_text(
        "id,a,b,c,color\nr1,0.5,,0.1,red\nr2,,0.2,0.3,\nr3,0.1,0.2,,blue\nr4,1,1,1,green\n"
    )
    result = score_file(settings, engine, path, tmp_path / "answers.csv", log_predictions=False)
    assert (result.rows, result.scored, result.set_aside) == (4, 3, 1)
    assert pd.read_csv(result.rejected).to_dict("records") == [
        {
            "row": 3,
            "reasons": "field 'c' is missing, and this version was not trained with missing "
            "values for it",
        }
    ]
    answers = pd.read_csv(result.answers)
    assert answers["id"].tolist() == ["r1", "r2", "r4"]
    sent = pd.DataFrame(
        {
            "a": [0.5, np.nan, 1.0],
            "b": [np.nan, 0.2, 1.0],
            "c": [0.1, 0.3, 1.0],
            "color": pd.Series(["red", np.nan, "green"], dtype=object),
        }
    )
    version = load_version(settings, "1")
    assert answers["prediction"].tolist() == version.pipeline.predict(sent).tolist()
