"""The operator's files: the compose stack (parsed; `docker compose config` where Docker is),
the image, and the Grafana dashboard, whose every query must name a metric the code exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml

from driftloop.stack.airflow_stack import COMPONENTS

from .conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
SERVICES = COMPOSE["services"]


def test_every_service_is_there_with_a_health_check():
    assert set(SERVICES) == {
        "postgres",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "mlflow",
        "server",
        "prometheus",
        "grafana",
    }
    for name, service in SERVICES.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"


def test_the_services_run_the_commands_the_full_stack_test_runs():
    """The same commands as include/driftloop/stack/ (only host and port differ)."""
    for component in COMPONENTS:
        service = SERVICES[
            "airflow-apiserver" if component == "api-server" else f"airflow-{component}"
        ]
        assert service["command"][:2] == ["airflow", component]
    assert "airflow db migrate" in " ".join(SERVICES["airflow-init"]["command"])
    assert "driftloop db upgrade" in " ".join(SERVICES["airflow-init"]["command"])
    mlflow = SERVICES["mlflow"]["command"]
    assert mlflow[:2] == ["mlflow", "server"] and "--serve-artifacts" in mlflow
    assert "--artifacts-destination" in mlflow and mlflow[mlflow.index("--workers") + 1] == "1"
    assert SERVICES["server"]["command"] == [
        "gunicorn",
        "-c",
        "serving/gunicorn.conf.py",
        "serving.app:create_app()",
    ]


def test_start_order_and_volumes():
    for name in (
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "server",
    ):
        depends = SERVICES[name]["depends_on"]
        assert depends["airflow-init"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
    assert SERVICES["server"]["depends_on"]["mlflow"]["condition"] == "service_healthy"
    declared = set(COMPOSE["volumes"])
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith("."):
                assert source in declared, f"{name} uses undeclared volume {source}"
            else:
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_every_variable_the_stack_uses_is_in_env_example():
    used = set(re.findall(r"\$\{(\w+)", (ROOT / "docker-compose.yaml").read_text()))
    example = {
        line.split("=")[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert used <= example, sorted(used - example)
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_the_image_runs_as_a_non_root_user():
    users = re.findall(r"^USER (\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker here")
def test_docker_compose_accepts_the_file(tmp_path):
    env = tmp_path / ".env"
    env.write_text((ROOT / ".env.example").read_text())
    done = subprocess.run(
        [
            "docker",
            "compose",
            "-f",
            str(ROOT / "docker-compose.yaml"),
            "--env-file",
            str(env),
            "config",
            "-q",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if "is not a docker command" in done.stderr or "unknown" in done.stderr.lower():
        pytest.skip("docker has no compose plugin here")
    assert done.returncode == 0, done.stderr


def _exported_metric_names() -> set[str]:
    sources = [ROOT / "serving/metrics.py", ROOT / "include/driftloop/observability.py"]
    return {
        name for path in sources for name in re.findall(r'"(driftloop_[a-z_]+)"', path.read_text())
    }


def test_the_dashboard_queries_only_metrics_the_code_exports():
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/driftloop.json").read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["panels"]
    exported = _exported_metric_names()
    for panel in dashboard["panels"]:
        assert panel["title"] and panel["type"] and panel["gridPos"], panel
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            names = re.findall(r"driftloop_[a-z_]+", target["expr"])
            assert names, target
            for name in names:
                base = re.sub(r"_(bucket|sum|count)$", "", name)
                assert base in exported, f"{panel['title']!r} queries {name}, which nothing exports"
    queried = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for needed in (
        "predictions_total",
        "latency",
        "errors",
        "online_metric",
        "drift_feature_score",
        "model_version_info",
    ):
        assert needed in queried


def test_airflow_cfg_is_sized_for_a_small_machine():
    import configparser

    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "airflow.cfg")
    assert config["core"]["executor"] == "LocalExecutor"
    assert int(config["core"]["parallelism"]) <= 8
    keys = {key for section in config.sections() for key in config[section]}
    assert not keys & {"jwt_secret", "secret_key", "fernet_key"}  # secrets come from the env
