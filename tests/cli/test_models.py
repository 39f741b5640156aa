"""``retrain --latest-drift`` and ``models`` as a person runs them: real processes, real
PyCaret (a fast model list) and an embedded MLflow, checked against the registry and the
``retrain_runs`` rows they leave; and ``models`` on a config of several models (one row each,
or one model's versions with ``--model``)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from driftloop import registry
from driftloop.gate.statistics import look_alpha
from driftloop.ingestion.stream import replay
from driftloop.schema import upgrade
from driftloop.settings_loader import load_settings
from driftloop.stages import retrain as steps
from driftloop.stages.drift_check import check_next_batch
from driftloop.stages.ingest import ingest_landing
from driftloop.storage import RetrainRun, make_engine, session_scope
from tests.conftest import ROOT, clear_driftloop_env
from tests.support.airflow_dags import CONCEPT
from tests.support.cli import Cli, Shown, clean_env, in_process
from tests.support.many_models import ManyModels, write_config

FAST = {"models": ["dt"], "budget_minutes": 0.5, "folds": 2}  # one model: seconds per training
VERSION = re.compile(
    r"version +(?P<version>\d+)  alias (?P<alias>\S+) +stage (?P<stage>\S+) +gate (?P<gate>\S+)"
    r"(?:  \((?P<reason>.*)\))?"
)
NUMBER = r"([+-]?\d+\.\d+|n/a)"
GATE_NUMBERS = re.compile(
    rf" +gate numbers: (?P<metric>\w+) {NUMBER} vs Production {NUMBER}, advantage {NUMBER} "
    rf"\[{NUMBER}, {NUMBER}\], margin (\S+), alpha (\S+), (\d+) rows, (?P<test>.+), attempt (\d+)"
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Settings with the fast model list, a migrated database, and the CLI on the same home."""
    for name in list(os.environ):
        if name.startswith("DRIFTLOOP_") and name != "DRIFTLOOP_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    settings = load_settings(
        ROOT / "driftloop.yaml", storage={"home": tmp_path / "home"}, training=FAST
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    env = clean_env(
        settings.storage.home,
        DRIFTLOOP_TRAINING__MODELS=json.dumps(FAST["models"]),
        DRIFTLOOP_TRAINING__BUDGET_MINUTES=str(FAST["budget_minutes"]),
        DRIFTLOOP_TRAINING__FOLDS=str(FAST["folds"]),
    )
    run = Cli(env, cwd=tmp_path, shown=Shown.OUTPUT_OR_ERROR)

    yield settings, engine, run
    engine.dispose()


def _retrains(engine) -> list[RetrainRun]:
    with session_scope(engine) as session:
        rows = list(session.scalars(sa.select(RetrainRun).order_by(RetrainRun.id)))
        session.expunge_all()
        return rows


def test_models_and_retrain_latest_drift_before_anything_exists(home):
    _, engine, run = home
    assert run("models") == "no registered versions: run `driftloop bootstrap`\n"
    assert run("retrain", "--latest-drift", expect=1) == (
        "error: no drift verdict yet: nothing to retrain for (run `driftloop drift check --all`)"
    )
    assert _retrains(engine) == []


def _number(text: str) -> float | None:
    return None if text == "n/a" else float(text)


@pytest.mark.timeout(600)
def test_retrain_latest_drift_gates_a_challenger_and_models_lists_every_version(home):
    """Several drifted batches: ``--latest-drift`` retrains for the newest one (its 250 rows
    leave a 100-row holdout, too few to decide). ``models`` then shows each version's alias,
    stage and gate, and the gate's stored numbers."""
    settings, engine, run = home
    steps.bootstrap(settings, engine)
    replay(settings, "concept", n_batches=5, start_batch=2, shift_features=CONCEPT)
    ingest_landing(settings, engine)
    drifted = []
    while (outcome := check_next_batch(settings, engine, None, "1")) is not None:
        if outcome.drifted:
            drifted.append(outcome.report_id)
    assert len(drifted) >= 2, drifted

    out = run("retrain", "--latest-drift")
    bootstrapped, retrained = _retrains(engine)
    assert bootstrapped.trigger == "bootstrap" and bootstrapped.model_version == "1"
    assert (retrained.trigger, retrained.drift_check_id) == ("drift", drifted[-1])
    assert (retrained.model_version, retrained.production_version) == ("2", "1")
    assert out == (
        f"version 2 ({retrained.details['model']}): {retrained.decision}: {retrained.reason}\n"
    )
    client = registry.configure(settings)
    challenger = client.get_model_version(settings.model.name, "2")
    assert challenger.tags[registry.DRIFT_REPORT] == str(drifted[-1])

    lines = run("models").splitlines()
    assert len(lines) == 3, lines  # two versions; only version 2 went through the gate
    first, second = (VERSION.fullmatch(line) for line in (lines[0], lines[1]))
    assert first and second, lines
    assert (first["version"], first["alias"], first["stage"], first["gate"]) == (
        "1",
        "production",
        "Production",
        "production",
    )
    assert first["reason"] == client.get_model_version(settings.model.name, "1").tags.get(
        registry.GATE_REASON
    )
    # 100 holdout rows since the newest drift cannot decide: version 2 waits, tagged pending
    assert retrained.decision == "insufficient_evidence" and retrained.gate_rows == 100
    assert (second["version"], second["alias"], second["stage"], second["gate"]) == (
        "2",
        "-",
        "None",
        "pending",
    )
    # the tag holds the gate's reason; the stored decision adds the numbers in brackets
    assert retrained.reason.startswith(second["reason"] + " (")
    assert second["reason"] == challenger.tags[registry.GATE_REASON]
    numbers = GATE_NUMBERS.fullmatch(lines[2])
    assert numbers, lines
    assert numbers["metric"] == retrained.metric == "accuracy"
    values = [_number(v) for v in numbers.groups()[1:6]]
    stored = [
        retrained.challenger_score,
        retrained.production_score,
        retrained.gate_difference,
        retrained.gate_low,
        retrained.gate_high,
    ]
    assert values == pytest.approx(stored, abs=5e-5)
    margin, alpha, rows, test, attempt = numbers.groups()[6:]
    assert (float(margin), float(alpha), int(rows), test, int(attempt)) == (
        retrained.gate_margin,
        retrained.gate_alpha,
        retrained.gate_rows,
        retrained.gate_test,
        retrained.gate_attempt,
    )
    # the first look spends its share of gate_alpha (training.gate.look_alpha)
    first_look = look_alpha(settings.training, 1)
    assert retrained.gate_alpha == first_look and retrained.gate_attempt == 1


# A config of several models (issue 30): `driftloop models` with none chosen shows one row per
# model; with --model, that model's versions as above. In this process (see ``in_process``):
# the rows are written straight, not trained.
HEAD = ["model", "Production", "Staging", "last drift verdict", "A/B test"]


def _cells(line: str) -> list[str]:
    return re.split(r" {2,}", line.strip())


def test_models_lists_every_model_in_one_row(models_config: ManyModels):
    deployment = models_config
    done = in_process("--config", str(deployment.config), "models")
    assert done.code == 0, done.stderr
    head, white, red, alcohol = (_cells(line) for line in done.stdout.splitlines())
    assert head == HEAD
    assert white[:3] == ["white_wine", "v1", "v2"]
    assert re.fullmatch(r"drift \(\d{4}-\d\d-\d\d \d\d:\d\d, batch-001\.csv\)", white[3])
    assert white[4] == f"running #{deployment.white_test}: Staging v2 vs Production v1"
    assert red[:3] == ["red_wine", "v1", "-"] and red[3].startswith("no_drift (")
    assert red[4] == f"promoted #{deployment.red_test}: Staging v1 vs Production v0"
    assert alcohol == ["white_alcohol", "-", "-", "none yet", "none"]

    done = in_process("--config", str(deployment.config), "models", "--json")
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["model"], r["production"], r["staging"], r["error"]) for r in rows] == [
        ("white_wine", "1", "2", None),
        ("red_wine", "1", None, None),
        ("white_alcohol", None, None, None),
    ]
    assert rows[0]["drift"]["id"] == deployment.white_drift_ids[-1]
    assert rows[0]["drift"]["drifted_features"] == ["alcohol", "pH"]
    assert rows[0]["ab"]["status"] == "running" and rows[1]["ab"]["status"] == "promoted"
    assert rows[2]["drift"] is None and rows[2]["ab"] is None


def test_models_of_one_model_lists_its_versions_as_before(models_config: ManyModels):
    config = str(models_config.config)
    before = in_process("--config", config, "--model", "white_wine", "models")
    after = in_process("--config", config, "models", "-m", "white_wine")
    assert before.code == after.code == 0 and before.stdout == after.stdout
    versions = [VERSION.fullmatch(line) for line in after.stdout.splitlines()]
    assert [(v["version"], v["alias"], v["stage"], v["gate"]) for v in versions if v] == [
        ("1", "production", "Production", "-"),
        ("2", "staging", "Staging", "-"),
    ]
    assert len(versions) == 2
    done = in_process("--config", config, "models", "--model", "red_wine", "--json")
    (red,) = (json.loads(line) for line in done.stdout.splitlines())
    assert (red["version"], red["aliases"], red["gate_numbers"]) == ("1", "production", None)


def test_a_broken_model_keeps_its_row_and_fails_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    clear_driftloop_env(monkeypatch)
    url = f"sqlite:///{tmp_path / 'driftloop.db'}"
    config = write_config(tmp_path, url, fraud={"drift": {"false_alarm_rate": 2}})
    upgrade(make_engine(url))
    done = in_process("--config", str(config), "models")
    assert done.code == 1
    assert done.stderr == "error: 1 of 4 models could not be read whole: fraud\n"
    lines = done.stdout.splitlines()
    assert _cells(lines[0]) == HEAD
    assert [_cells(line)[0] for line in lines[1:4]] == ["white_wine", "red_wine", "white_alcohol"]
    assert _cells(lines[4]) == ["fraud", "-", "-", "none yet", "none"]
    assert "invalid configuration of model 'fraud'" in lines[5]
    assert lines[6].strip().startswith("[fraud] drift.false_alarm_rate:")
    # models that never registered a version: nothing read, and no MLflow store created
    assert not list(tmp_path.glob("var/*/mlflow.db"))
