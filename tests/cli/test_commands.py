"""The command tree the CLI package puts together: every command a person (and the README)
uses, and the promotion commands both at the top level and under ``ab`` beside ``ab history``."""

from __future__ import annotations

import typer.main
from typer.testing import CliRunner

from driftloop.cli import app

TREE = {
    "config": ["show", "check", "dags"],
    "db": ["upgrade", "downgrade", "current", "replay-spill"],
    "stream": ["reference", "scenarios", "replay"],
    "batches": ["ingest", "list", "reprocess", "label"],
    "drift": ["check", "reports", "show", "reset-reference"],
    "traffic": ["show", "set"],
    "ab": ["evaluate", "reports", "history", "promote", "reject", "rollback", "simulate-aa"],
}
TOP = [
    "bootstrap",
    "retrain",
    "models",
    "score",
    "simulate",
    "status",
    "promote",
    "reject",
    "rollback",
    "demo",
]


def test_every_command_is_where_the_readme_says():
    root = typer.main.get_command(app)
    assert list(root.commands) == [*TOP, *TREE]
    for group, commands in TREE.items():
        assert list(root.commands[group].commands) == commands, group


def test_promote_reject_and_rollback_are_one_command_in_two_places():
    root = typer.main.get_command(app)
    for name in ("promote", "reject", "rollback"):
        top, under_ab = root.commands[name], root.commands["ab"].commands[name]
        assert top.help == under_ab.help  # typer wraps each registration's callback
        assert [p.name for p in top.params] == [p.name for p in under_ab.params]
    shown = CliRunner().invoke(app, ["ab", "rollback", "--help"])
    assert shown.exit_code == 0 and "--reason" in shown.output and "--yes" in shown.output
