"""The CLI end to end, as a person runs it: real processes, real files, SQLite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from driftloop.ingestion.scenarios import SCENARIOS
from driftloop.schema import head_revision
from driftloop.settings_loader import load_settings
from tests.conftest import ROOT
from tests.support.cli import Cli, clean_env


@pytest.fixture
def run(tmp_path: Path):
    return Cli(clean_env(tmp_path / "home"), cwd=tmp_path)


def test_replay_ingest_list_and_reprocess(run, tmp_path):
    assert run("config", "check", AIRFLOW__CORE__EXECUTOR="LocalExecutor") == (
        "config ok: 11 features, target 'quality' (classification), "
        f"data {ROOT / 'data/wine/winequality-white.csv'}\nAirflow executor: LocalExecutor\n"
    )
    # first use on the embedded default creates the database at the newest revision
    assert "no files in" in run("batches", "ingest")
    head = head_revision()
    assert f"current {head}, head {head}" in run("db", "current")
    assert f"revision {head}" in run("db", "upgrade")
    assert f"current {head}, head {head}" in run("db", "current")
    assert "reference split: 1469 rows" in run("stream", "reference")
    replayed = run(
        "stream",
        "replay",
        "--scenario",
        "gradual",
        "--batches",
        "4",
        "--inject-fault",
        "missing-column",
    )
    assert "a broken copy (missing-column)" in replayed

    ingested = run("batches", "ingest")
    assert ingested.count(": accepted") == 4
    assert "quarantined" in ingested and "missing column(s): ['alcohol']" in ingested

    listed = run("batches", "list", "--status", "quarantined")
    quarantined_file = Path(listed.split("file: ")[1].split()[0])
    assert quarantined_file.exists()
    batch_id = listed.split()[0]

    fixed = tmp_path / "fixed.csv"
    fixed.write_text((tmp_path / "home/batches").glob("*.csv").__next__().read_text())
    # That content is already batch 1: reprocessing refuses to make a duplicate.
    assert "same content as batch" in run(
        "batches", "reprocess", batch_id, "--file", str(fixed), expect=1
    )
    lines = fixed.read_text().splitlines()
    fixed.write_text("\n".join(lines[:-1]) + "\n")
    assert ": accepted" in run("batches", "reprocess", batch_id, "--file", str(fixed))
    assert "no batches with status quarantined" in run("batches", "list", "--status", "quarantined")

    assert "database at revision base" in run("db", "downgrade", "base")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("stream", "replay", "--scenario", "tsunami"), "unknown scenario"),
        (("stream", "replay", "--inject-fault", "gremlins"), "unknown fault"),
        (("batches", "reprocess", "42"), "no batch with id or name '42'"),
    ],
)
def test_bad_requests_exit_1_with_a_sentence(run, args, message):
    assert message in run(*args, expect=1)


def test_usage_errors_exit_2(run):
    assert "No such command" in run("frobnicate", expect=2)


def test_traffic_split_is_shared_through_the_database(run):
    run("db", "upgrade")
    assert "staging 0%, production 100% (never set)" in run("traffic", "show")
    assert "staging 20%, production 80%, staging shadows production (split version 1)" in run(
        "traffic", "set", "--staging", "0.2", "--shadow"
    )
    assert "between 0 and 1" in run("traffic", "set", "--staging", "1.5", expect=1)
    # a refused value changed nothing, not even the version
    assert "staging 20%, production 80%, staging shadows production (split version 1)" in run(
        "traffic", "show"
    )


def test_an_older_database_is_not_upgraded_by_an_ordinary_command(run):
    head = head_revision()
    run("db", "upgrade")
    run("db", "downgrade", "--", "-1")
    assert "run `driftloop db upgrade`" in run("batches", "list", expect=1)
    assert f"head {head}" in run("db", "current") and f"current {head}," not in run("db", "current")


def test_config_show_prints_the_resolved_settings_with_overrides(run, tmp_path):
    shown = json.loads(run("config", "show"))
    expected = json.loads(
        load_settings(
            ROOT / "driftloop.yaml", storage={"home": tmp_path / "home"}
        ).model_dump_json()
    )
    assert shown == expected
    assert shown["storage"]["home"] == str(tmp_path / "home")  # the environment override
    assert shown["stream"]["batch_size"] == 250 and shown["ab"]["alpha"] == 0.05


def test_stream_scenarios_lists_every_registered_scenario(run):
    lines = run("stream", "scenarios").splitlines()
    assert [line.split()[0] for line in lines] == list(SCENARIOS)
    for line, scenario in zip(lines, SCENARIOS.values(), strict=True):
        assert scenario.description in line
