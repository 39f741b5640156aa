"""What the wheel check (``ci/wheel_check.sh``) relies on, checked fast: the Dockerfile's
installs are found and rewritten for a virtualenv, and code that needs the project's folders
says where it looked when they are not there (as from an installed wheel)."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from driftloop.stack.load_balancer import render_config
from driftloop.stack.processes import StackError
from driftloop.stack.project import PROJECT_ENV, gunicorn_config, project_path
from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location(
    "dockerfile_installs", ROOT / "ci/dockerfile_installs.py"
)
dockerfile_installs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dockerfile_installs)


def test_the_dockerfiles_installs_are_replayed_into_a_virtualenv():
    commands = dockerfile_installs.installs(ROOT / "Dockerfile", "/v/bin/python")
    assert commands[0].startswith("/v/bin/python -m pip install")
    assert "uv pip sync --python /v/bin/python requirements.txt" in commands
    assert "uv pip install --python /v/bin/python --no-deps ." in commands
    assert not any("--system" in c for c in commands)


def test_a_dockerfile_without_installs_is_refused(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM python:3.11-slim\nRUN apt-get update\n")
    with pytest.raises(SystemExit, match="no pip or uv command"):
        dockerfile_installs.installs(tmp_path / "Dockerfile", sys.executable)


def test_a_missing_project_folder_names_every_place_looked(tmp_path, monkeypatch):
    monkeypatch.setenv(PROJECT_ENV, str(tmp_path / "elsewhere"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StackError) as error:
        project_path("no-such-folder")
    message = str(error.value)
    assert str(tmp_path / "elsewhere" / "no-such-folder") in message
    assert str(tmp_path / "no-such-folder") in message
    assert PROJECT_ENV in message


def test_project_folders_are_found_in_the_checkout_and_where_the_variable_points(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(PROJECT_ENV, raising=False)
    assert project_path("dags") == ROOT / "dags"
    (tmp_path / "project" / "dags").mkdir(parents=True)
    monkeypatch.setenv(PROJECT_ENV, str(tmp_path / "project"))
    assert project_path("dags") == tmp_path / "project" / "dags"


def test_gunicorn_config_and_nginx_proxy_are_the_projects_files(tmp_path):
    assert gunicorn_config() == ROOT / "serving" / "gunicorn.conf.py"
    config = render_config(["127.0.0.1:1"], 2, tmp_path)
    assert f"include {ROOT / 'deploy/nginx/proxy.conf'};" in config
