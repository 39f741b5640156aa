"""``--model`` on every command (issue 30): taken before the command's name or after it, in one
place for all commands; a config of several models with none chosen stops with exit code 2 and
a sentence naming them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer.main

from driftloop.cli import app
from tests.conftest import clear_driftloop_env
from tests.support.cli import in_process
from tests.support.many_models import write_config


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The three models' config; nothing here reads their registries or rows."""
    clear_driftloop_env(monkeypatch)
    return write_config(tmp_path, f"sqlite:///{tmp_path / 'driftloop.db'}")


def _leaves(command, path=()):
    commands = getattr(command, "commands", None)
    if commands is None:
        yield " ".join(path), command
        return
    for name, sub in commands.items():
        yield from _leaves(sub, (*path, name))


def test_every_command_takes_model_after_its_name():
    leaves = dict(_leaves(typer.main.get_command(app)))
    assert len(leaves) >= 30 and {"models", "status", "drift check", "stream scenarios"} <= set(
        leaves
    )
    missing = [
        name
        for name, command in leaves.items()
        if not any({"--model", "-m"} <= set(param.opts) for param in command.params)
    ]
    assert missing == []


def test_several_models_and_none_chosen_exit_2_naming_them(config: Path):
    done = in_process("--config", str(config), "status")
    assert done.code == 2 and done.stdout == ""
    assert done.stderr == (
        f"error: {config} declares 3 models (white_wine, red_wine, white_alcohol): "
        "choose one with --model or DRIFTLOOP_MODEL__NAME\n"
    )


def test_model_after_the_command_is_the_same_as_before_it(config: Path):
    before = in_process("--config", str(config), "--model", "red_wine", "config", "show")
    after = in_process("--config", str(config), "config", "show", "-m", "red_wine")
    assert before.code == after.code == 0, before.stderr + after.stderr
    assert before.stdout == after.stdout
    shown = json.loads(after.stdout)
    assert shown["model"]["name"] == "red_wine"
    assert shown["data"]["path"].endswith("winequality-red.csv")


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (
            ("-m", "white_wine", "status", "--model", "red_wine"),
            "'red_wine' here and 'white_wine' before the command name two models: give one",
        ),
        (("status", "--model", "red"), "declares no model 'red'"),
        # refused before any command runs, one that reads no settings included
        (("stream", "scenarios", "-m", "red"), "declares no model 'red'"),
        (("-m", "red", "stream", "scenarios"), "declares no model 'red'"),
    ],
)
def test_a_wrong_model_is_exit_2_with_a_sentence(config: Path, args: tuple, sentence: str):
    done = in_process("--config", str(config), *args)
    assert done.code == 2 and done.stdout == ""
    assert sentence in " ".join(done.stderr.split())  # the usage box wraps long lines
