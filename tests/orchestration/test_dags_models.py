"""Each model's own DAGs (issue 30, item 2): ids, tags, Assets and queues per model, a broken
model that fails alone, and the single-model DAGs as they always were.

One fresh process parses every folder with Airflow's DagBag (``tests/support/dag_bags.py``);
no Airflow database or scheduler is started."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from driftloop.events import model_asset_uri, model_dag_id
from driftloop.orchestration.model_dags import (
    KINDS,
    MODELS_FOLDER,
    WRITTEN_MARK,
    dag_model_name,
    write_model_files,
)
from driftloop.settings_loader import ConfigError, load_settings
from tests.conftest import ROOT
from tests.support.script_result import script_result

EXAMPLE = ROOT / "examples" / "three_models.yaml"
MODELS = ["red_wine", "white_alcohol", "white_wine"]
ML_TASKS = {"train", "evaluate"}


def project_dags(folder: Path) -> Path:
    """A copy of the project's five DAG files, as a deployment's dags/ holds them."""
    dags = folder / "dags"
    dags.mkdir(parents=True)
    for kind in KINDS:
        shutil.copy(ROOT / "dags" / f"{kind}.py", dags)
    return dags


def example_config(folder: Path, **entries: dict) -> Path:
    """examples/three_models.yaml with absolute data paths, each model's entry updated."""
    document = yaml.safe_load(EXAMPLE.read_text())
    document["data"]["path"] = str((EXAMPLE.parent / document["data"]["path"]).resolve())
    red = document["models"]["red_wine"]["data"]
    red["path"] = str((EXAMPLE.parent / red["path"]).resolve())
    for name, entry in entries.items():
        document["models"][name] = {**(document["models"][name] or {}), **entry}
    config = folder / "driftloop.yaml"
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    return config


def dag_bags(folders: list[dict], tmp_path: Path) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "DRIFTLOOP_"))}
    env.update(
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        DRIFTLOOP_STORAGE__HOME=str(tmp_path / "home"),
    )
    return script_result("dag_bags.py", json.dumps(folders), env=env)


@pytest.fixture(scope="module")
def bags(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Four folders parsed in one process: the three models of the example; the same with
    white_alcohol broken and a file left for a model no longer declared; red_wine's file
    missing; and the project's own dags/ with its single-model driftloop.yaml."""
    tmp = tmp_path_factory.mktemp("model_dags")
    good = project_dags(tmp / "good")
    write_model_files(EXAMPLE, good)
    inbox = tmp / "home" / "red_wine" / "scoring" / "inbox"
    inbox.mkdir(parents=True)
    (inbox / "new.csv").write_text("alcohol\n9.5\n")

    broken = project_dags(tmp / "broken")
    broken_config = example_config(tmp / "broken", white_alcohol={"drift": {"drift_share": 7}})
    write_model_files(broken_config, broken)
    (broken / MODELS_FOLDER / "retired.py").write_text(
        (good / MODELS_FOLDER / "red_wine.py").read_text()
    )

    missing = project_dags(tmp / "missing")
    write_model_files(EXAMPLE, missing)
    (missing / MODELS_FOLDER / "red_wine.py").unlink()

    folders = {
        "good": {"dags": str(good), "config": str(EXAMPLE), "inbox": True},
        "broken": {"dags": str(broken), "config": str(broken_config)},
        "missing": {"dags": str(missing), "config": str(EXAMPLE)},
        "single": {"dags": str(ROOT / "dags"), "config": str(ROOT / "driftloop.yaml")},
    }
    return dict(zip(folders, dag_bags(list(folders.values()), tmp), strict=True))


def test_each_model_has_its_own_dags_assets_tags_and_queues(bags):
    good = bags["good"]
    assert good["errors"] == {}
    assert sorted(good["dags"]) == sorted(f"{kind}__{model}" for kind in KINDS for model in MODELS)
    for model in MODELS:
        for kind in KINDS:
            dag = good["dags"][f"{kind}__{model}"]
            assert dag["tags"] == ["driftloop", f"model:{model}"]
            assert dag["file"] == f"{MODELS_FOLDER}/{model}.py"  # its import errors are its own
            assert {task: queue for task, queue in dag["queues"].items() if queue != "default"} == (
                {task: "training" for task in ML_TASKS} if kind == "retrain" else {}
            )
        # drift on this model starts this model's retrain only
        own = {e: f"driftloop://{e}/{model}" for e in ("drift", "decay", "approval")}
        assert good["dags"][f"drift_monitor__{model}"]["outlets"] == [own["decay"], own["drift"]]
        assert good["dags"][f"retrain__{model}"]["schedule"] == [own["drift"], own["decay"]]
        assert good["dags"][f"ab_evaluate__{model}"]["outlets"] == [own["approval"], own["decay"]]
        assert good["dags"][f"ab_approval__{model}"]["schedule"] == [own["approval"]]
        # the tasks run their own model's stage: train and evaluate get its name ...
        assert good["dags"][f"retrain__{model}"]["train_args"] == [str(EXAMPLE), model]
    # ... and a task reads its own model's settings (here: its scoring inbox)
    assert good["dags"]["batch_score__red_wine"]["inbox"] == ["new.csv"]
    assert good["dags"]["batch_score__white_wine"]["inbox"] == []


def test_a_broken_model_is_its_own_import_error_and_the_others_load(bags):
    broken = bags["broken"]
    assert sorted(broken["errors"]) == [
        f"{MODELS_FOLDER}/retired.py",
        f"{MODELS_FOLDER}/white_alcohol.py",
    ]
    error = broken["errors"][f"{MODELS_FOLDER}/white_alcohol.py"]
    assert "invalid configuration of model 'white_alcohol'" in error
    assert "[white_alcohol] drift.drift_share: Input should be less than or equal to 1" in error
    assert "declares no model 'retired'" in broken["errors"][f"{MODELS_FOLDER}/retired.py"]
    assert sorted(broken["dags"]) == sorted(
        f"{kind}__{model}" for kind in KINDS for model in ("red_wine", "white_wine")
    )


def test_a_model_without_its_file_is_named_by_the_dag_files(bags):
    missing = bags["missing"]
    assert sorted(missing["errors"]) == sorted(f"{kind}.py" for kind in KINDS)
    assert all(
        "red_wine has none: run `driftloop config dags`" in text
        for text in missing["errors"].values()
    )
    assert sorted(missing["dags"]) == sorted(
        f"{kind}__{model}" for kind in KINDS for model in ("white_alcohol", "white_wine")
    )


def test_a_single_model_config_keeps_its_dag_ids_and_assets(bags):
    single = bags["single"]
    assert single["errors"] == {}
    assert sorted(single["dags"]) == list(KINDS)
    assert all(dag["tags"] == ["driftloop"] for dag in single["dags"].values())
    # Airflow writes an empty path as "/", as it always did for these URIs
    assert single["dags"]["drift_monitor"]["outlets"] == [
        "driftloop://decay/",
        "driftloop://drift/",
    ]
    assert single["dags"]["retrain"]["schedule"] == ["driftloop://drift/", "driftloop://decay/"]
    assert single["dags"]["ab_approval"]["schedule"] == ["driftloop://approval/"]
    assert single["dags"]["retrain"]["queues"]["train"] == "training"
    assert single["dags"]["retrain"]["train_args"] == [str(ROOT / "driftloop.yaml"), None]
    assert (model_dag_id("retrain", None), model_asset_uri("driftloop://drift", None)) == (
        "retrain",
        "driftloop://drift",
    )


def test_the_cli_names_the_dags_of_the_model_it_acts_on():
    """``driftloop promote`` answers a model's approval in that model's own DAG."""
    single = ROOT / "driftloop.yaml"
    assert dag_model_name(single, load_settings(single)) is None
    assert dag_model_name(EXAMPLE, load_settings(EXAMPLE, "red_wine")) == "red_wine"
    assert model_dag_id("ab_approval", "red_wine") == "ab_approval__red_wine"


def test_model_files_follow_the_config_and_leave_other_files_alone(tmp_path):
    dags = project_dags(tmp_path)
    written, removed = write_model_files(EXAMPLE, dags)
    assert sorted(p.stem for p in written) == MODELS and removed == []
    assert write_model_files(EXAMPLE, dags) == ([], [])  # nothing changed: nothing rewritten
    two = example_config(tmp_path)
    document = yaml.safe_load(two.read_text())
    del document["models"]["white_alcohol"]
    two.write_text(yaml.safe_dump(document))
    mine = dags / MODELS_FOLDER / "helpers.py"
    mine.write_text("# a user's own file\n")
    assert write_model_files(two, dags) == ([], [dags / MODELS_FOLDER / "white_alcohol.py"])
    assert mine.exists()
    single = tmp_path / "single.yaml"
    single.write_text((ROOT / "driftloop.yaml").read_text())
    written, removed = write_model_files(single, dags)  # no models: every written file goes
    assert written == [] and sorted(p.stem for p in removed) == ["red_wine", "white_wine"]
    assert sorted(p.name for p in (dags / MODELS_FOLDER).iterdir()) == ["helpers.py"]

    (dags / MODELS_FOLDER / "red_wine.py").write_text("# not driftloop's\n")
    with pytest.raises(ConfigError, match=r"red_wine\.py was not written by driftloop"):
        write_model_files(EXAMPLE, dags)
    assert WRITTEN_MARK not in (dags / MODELS_FOLDER / "red_wine.py").read_text()
    with pytest.raises(
        ConfigError, match=r"not driftloop's dags folder: it has no ab_approval\.py"
    ):
        write_model_files(EXAMPLE, tmp_path)
