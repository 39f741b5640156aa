"""Batch scoring (``driftloop score``, ``batch_score``): the same checks as ``/predict`` row by
row, answers equal to the version's own predictions, files moved so nothing is scored twice,
log rows marked ``batch`` that the A/B test leaves out, and nothing left behind by a file that
fails part-way."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from driftloop.scoring.model import load_version
from driftloop.stages.ab_evaluation import compute
from driftloop.stages.batch_scoring import Outcome, ScoringError, inbox, score_file
from driftloop.storage import BATCH, ABTest, Prediction
from tests.conftest import ROOT
from tests.support.airflow_dags import dag_test
from tests.support.cli import Cli, clean_env
from tests.support.served_home import production_and_staging


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Production (version 1) and Staging (version 2) of a real PyCaret pipeline."""
    with production_and_staging(tmp_path_factory.mktemp("scoring")) as (settings, engine):
        yield settings, engine


@pytest.fixture
def clean(served):
    """The served home with an empty prediction log and empty scoring folders."""
    settings, engine = served
    with engine.begin() as connection:
        connection.execute(sa.delete(Prediction))
    for folder in ("inbox", "out", "done", "quarantine"):
        target = settings.storage.scoring_dir / folder
        target.mkdir(parents=True, exist_ok=True)
        for path in target.iterdir():
            path.unlink()
    return settings, engine


def _rows(settings, count: int, seed: int = 0) -> pd.DataFrame:
    """Unlabelled rows from the data set, with an identifier column the answers carry along."""
    data = pd.read_csv(settings.data.path, sep=settings.data.separator)
    rows = data.drop(columns=settings.data.target).sample(count, random_state=seed)
    rows.insert(0, "customer", [f"c{i:05d}" for i in range(count)])
    return rows.reset_index(drop=True)


def _write(settings, frame: pd.DataFrame, name: str) -> Path:
    path = inbox(settings) / name
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, sep=settings.data.separator, index=False)
    return path


def _logged(engine) -> pd.DataFrame:
    with engine.connect() as connection:
        return pd.read_sql(sa.select(Prediction), connection)


def test_a_file_is_checked_scored_logged_and_moved(clean):
    settings, engine = clean
    rows = _rows(settings, 120).astype(object)
    rows.loc[3, "volatile acidity"] = "abc"
    rows.loc[5, "citric acid"] = None
    rows.loc[7, "residual sugar"] = "inf"
    rows.loc[9, "alcohol"] = "1e40"  # beyond float32: a tree would fail on it
    path = _write(settings, rows, "monday.csv")

    result = score_file(settings, engine, path)

    assert result.outcome is Outcome.SCORED
    assert (result.rows, result.scored, result.set_aside) == (120, 116, 4)
    assert result.input == settings.storage.scoring_dir / "done" / "monday.csv"
    assert not path.exists() and result.input.exists()
    assert result.answers == settings.storage.scoring_dir / "out" / "monday.v1.predictions.csv"
    rejected = pd.read_csv(result.rejected)
    assert rejected["row"].tolist() == [4, 6, 8, 10]  # data rows counted from 1
    assert rejected["reasons"].tolist() == [
        "field 'volatile acidity' is not a number (got 'abc')",
        "field 'citric acid' is missing, and this version was not trained with missing "
        "values for it",
        "field 'residual sugar' is not finite (got 'inf')",
        "field 'alcohol' is too large (got '1e+40')",
    ]
    answers = pd.read_csv(result.answers, sep=settings.data.separator, dtype={"customer": str})
    good = [i for i in range(120) if i not in (3, 5, 7, 9)]
    assert answers["customer"].tolist() == rows.loc[good, "customer"].tolist()
    assert answers["row"].tolist() == [i + 1 for i in good]
    assert set(answers["model_version"].astype(str)) == {"1"}
    # the answers are the version's own: the pipeline's predict and predict_proba on those rows
    version = load_version(settings, "1")
    features = rows.loc[good, list(version.schema.names)].astype(float)
    assert answers["prediction"].tolist() == version.pipeline.predict(features).tolist()
    probabilities = answers[[f"probability_{c}" for c in version.classes]].to_numpy()
    np.testing.assert_allclose(probabilities, version.pipeline.predict_proba(features), atol=1e-9)

    logged = _logged(engine)
    assert set(logged["assignment"]) == {BATCH}
    production = logged[~logged["shadow"]]
    assert production["record_id"].tolist() == answers["record_id"].tolist()
    assert set(production["model_version"]) == {"1"} and set(production["variant"]) == {
        "production"
    }
    assert (
        production["output"].map(lambda o: o["prediction"]).tolist()
        == answers["prediction"].tolist()
    )
    # Staging (version 2) answered the same rows in shadow
    shadow = logged[logged["shadow"]]
    assert result.shadow_version == "2"
    assert sorted(shadow["record_id"]) == sorted(production["record_id"])
    assert set(shadow["model_version"]) == {"2"}


def test_batch_rows_stay_out_of_the_ab_decision(clean):
    settings, engine = clean
    score_file(settings, engine, _write(settings, _rows(settings, 40), "tuesday.csv"))
    assert (_logged(engine)["assignment"] == BATCH).sum() == 80  # 40 and 40 in shadow
    test = ABTest(
        model_name=settings.model.name,
        production_version="1",
        staging_version="2",
        status="running",
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    evaluation = compute(settings, engine, test, datetime.now(UTC))
    assert (evaluation.production.requests, evaluation.staging.requests) == (0, 0)


def test_chunks_change_nothing_and_parquet_answers_in_parquet(clean):
    settings, engine = clean
    rows = _rows(settings, 57, seed=1)
    whole = score_file(settings, engine, _write(settings, rows, "whole.csv"), log_predictions=False)
    chunked_settings = settings.model_copy(
        update={"scoring": settings.scoring.model_copy(update={"chunk_rows": 7})}
    )
    parquet = score_file(
        chunked_settings, engine, _write(settings, rows, "chunked.parquet"), log_predictions=False
    )
    assert parquet.answers.suffix == ".parquet" and parquet.scored == 57
    one = pd.read_csv(whole.answers, sep=settings.data.separator, dtype={"customer": str})
    many = pd.read_parquet(parquet.answers)
    assert many["customer"].tolist() == one["customer"].tolist()
    assert many["row"].tolist() == list(range(1, 58))
    assert many["prediction"].tolist() == one["prediction"].tolist()
    assert _logged(engine).empty  # --no-log


def test_a_file_with_no_usable_row_is_quarantined_with_its_reason(clean):
    settings, engine = clean
    rows = _rows(settings, 5).astype(object)
    rows["pH"] = "acidic"
    path = _write(settings, rows, "bad.csv")
    result = score_file(settings, engine, path)
    assert result.outcome is Outcome.QUARANTINED
    assert result.input == settings.storage.scoring_dir / "quarantine" / "bad.csv"
    note = Path(f"{result.input}.reason.txt").read_text()
    assert note.startswith("no usable row: row 1: field 'pH' is not a number (got 'acidic')")
    assert list((settings.storage.scoring_dir / "out").iterdir()) == []
    assert _logged(engine).empty


def test_a_missing_column_quarantines_the_file_naming_it(clean):
    settings, engine = clean
    path = _write(settings, _rows(settings, 5).drop(columns=["pH", "alcohol"]), "narrow.csv")
    result = score_file(settings, engine, path)
    assert result.outcome is Outcome.QUARANTINED
    assert result.reason == "narrow.csv has no column for 'pH', 'alcohol'"


def test_a_line_with_the_wrong_number_of_fields_is_set_aside(clean):
    settings, engine = clean
    path = _write(settings, _rows(settings, 30), "ragged.csv")
    with path.open("a") as handle:  # too many fields after 30 good rows, then a good one
        handle.write(";".join(["1"] * 20) + "\n")
        handle.write(";".join(["c9"] + ["1"] * 11) + "\n")
    small = settings.model_copy(
        update={"scoring": settings.scoring.model_copy(update={"chunk_rows": 10})}
    )
    result = score_file(small, engine, path, log_predictions=False)
    assert (result.rows, result.scored, result.set_aside) == (32, 31, 1)
    rejected = pd.read_csv(result.rejected)
    assert rejected.to_dict("records") == [
        {"row": 31, "reasons": "the line has 20 fields, the header 12"}
    ]
    answers = pd.read_csv(result.answers, sep=settings.data.separator)
    assert answers["row"].tolist() == [*range(1, 31), 32]


def test_a_file_that_breaks_part_way_leaves_no_answers_and_no_log_rows(clean):
    settings, engine = clean
    path = _write(settings, _rows(settings, 30), "torn.csv")
    with path.open("ab") as handle:  # bytes that are not UTF-8, after 30 good rows
        handle.write(b"c9;\xff\xfe;" + b";".join([b"1"] * 10) + b"\n")
    small = settings.model_copy(
        update={"scoring": settings.scoring.model_copy(update={"chunk_rows": 10})}
    )
    result = score_file(small, engine, path)
    assert result.outcome is Outcome.QUARANTINED and "cannot be read" in result.reason
    assert result.input == settings.storage.scoring_dir / "quarantine" / "torn.csv"
    assert list((settings.storage.scoring_dir / "out").iterdir()) == []
    assert _logged(engine).empty  # the chunks logged before the bad line were taken back


def test_a_file_outside_the_inbox_stays_where_it_is(clean, tmp_path):
    settings, engine = clean
    path = tmp_path / "mine.csv"
    _rows(settings, 10).to_csv(path, sep=settings.data.separator, index=False)
    result = score_file(settings, engine, path, tmp_path / "answers.csv")
    assert result.input == path and path.exists()
    assert result.answers == tmp_path / "answers.csv"
    assert len(pd.read_csv(result.answers, sep=settings.data.separator)) == 10


def test_scoring_cannot_start_without_the_file(clean, tmp_path):
    settings, engine = clean
    with pytest.raises(ScoringError, match="does not exist or is not a file"):
        score_file(settings, engine, tmp_path / "nowhere.csv")
    path = _write(settings, _rows(settings, 3), "kept.csv")
    with pytest.raises(ScoringError, match=r"^answers.txt: answers are written as CSV \(.csv\)"):
        score_file(settings, engine, path, tmp_path / "answers.txt")
    assert path.exists()  # nothing moved, nothing written
    assert list((settings.storage.scoring_dir / "out").iterdir()) == []


def _cli(settings, *args: str, expect: int) -> str:
    return Cli(clean_env(settings.storage.home), cwd=Path.cwd())(*args, expect=expect)


def test_the_score_command(clean, tmp_path):
    settings, _ = clean
    _write(settings, _rows(settings, 25), "a.csv")
    _write(settings, _rows(settings, 4).drop(columns=["pH"]), "b.csv")
    out = _cli(settings, "score", expect=1)  # b.csv could not be scored
    assert "a.csv: 25 of 25 rows scored by version 1; Staging 2 in shadow" in out
    assert f"answers: {settings.storage.scoring_dir / 'out' / 'a.v1.predictions.csv'}" in out
    assert "b.csv: not scored: b.csv has no column for 'pH'" in out
    assert f"moved to {settings.storage.scoring_dir / 'quarantine' / 'b.csv'}" in out
    assert _cli(settings, "score", expect=0).startswith("nothing to score:")
    assert "error: " in _cli(settings, "score", str(tmp_path / "nope.csv"), expect=1)
    text = tmp_path / "rows.txt"
    text.write_text("x\n1\n")
    assert "only CSV (.csv) and Parquet (.parquet) files can be scored" in _cli(
        settings, "score", str(text), expect=1
    )
    assert text.exists()  # not in the inbox: left where it was


def test_the_batch_score_dag_scores_the_inbox(clean, airflow_env):
    settings, engine = clean
    _write(settings, _rows(settings, 15), "dag.csv")
    env = {
        **airflow_env,
        "DRIFTLOOP_CONFIG": str(ROOT / "driftloop.yaml"),
        "DRIFTLOOP_STORAGE__HOME": str(settings.storage.home),
    }
    run = dag_test(env, "batch_score", {})
    assert run["state"] == "success", run
    assert run["tasks"]["score"] == "success", run["tasks"]
    assert (settings.storage.scoring_dir / "done" / "dag.csv").exists()
    assert (settings.storage.scoring_dir / "out" / "dag.v1.predictions.csv").exists()
    assert (_logged(engine)["shadow"] == False).sum() == 15  # noqa: E712


@pytest.mark.parametrize("rows_per_chunk", [1, 2, 3, 5, 100])
def test_rows_keep_their_numbers_around_malformed_lines_at_any_chunk_size(tmp_path, rows_per_chunk):
    """Data rows are numbered as in the file (header not counted), malformed lines included,
    wherever the chunks' edges fall."""
    from driftloop.scoring.files import chunks
    from driftloop.scoring.model import FeatureSchema

    path = tmp_path / "f.csv"
    lines = ["id,x", "a,1", "b,2,9", "c,3", "d,4,9,9", "e,5,9", "f,x6", "g,7"]
    path.write_text("\n".join(lines) + "\n")
    schema = FeatureSchema(("x",), frozenset({"x"}))
    good, bad = {}, {}
    for chunk in chunks(path, schema, rows_per_chunk):
        good |= dict(zip(chunk.frame.index + 1, chunk.frame["id"], strict=True))
        bad |= {row + 1: why for row, why in chunk.malformed.items()}
    assert good == {1: "a", 3: "c", 6: "f", 7: "g"}
    assert bad == {
        2: "the line has 3 fields, the header 2",
        4: "the line has 4 fields, the header 2",
        5: "the line has 3 fields, the header 2",
    }
