"""The operator's files: the compose stack (parsed; `docker compose config` where Docker is),
the image, and the Grafana dashboard, whose every query must name a metric the code exports."""

from __future__ import annotations

import configparser
import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from driftloop.stack.airflow_stack import COMPONENTS
from tests.conftest import ROOT

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
        "server-1",
        "server-2",
        "load-balancer",
        "redis",
        "airflow-worker",
        "airflow-worker-training",
        "flower",
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


def test_the_replicas_profile_puts_two_servers_behind_nginx():
    """Each replica runs the server's command on the shared database; nginx's upstream names
    exactly the replicas, and both of its files are mounted where its config expects them."""
    replicas = [n for n, s in SERVICES.items() if "replicas" in s.get("profiles", [])]
    assert sorted(replicas) == ["load-balancer", "server-1", "server-2"]
    assert "profiles" not in SERVICES["server"]  # the plain stack keeps its one server
    for name in ("server-1", "server-2"):
        replica = SERVICES[name]
        assert replica["command"] == SERVICES["server"]["command"]
        assert replica["environment"] == SERVICES["server"]["environment"]
        assert replica["environment"]["DRIFTLOOP_DATABASE__URL"].startswith("postgresql")
        assert replica["ports"] == []  # reached through nginx only
    nginx = SERVICES["load-balancer"]
    mounts = dict(volume.rsplit(":", 1)[0].split(":") for volume in nginx["volumes"])
    assert mounts == {
        "./deploy/nginx/nginx.conf": "/etc/nginx/nginx.conf",
        "./deploy/nginx/proxy.conf": "/etc/nginx/driftloop/proxy.conf",
    }
    config = (ROOT / "deploy/nginx/nginx.conf").read_text()
    assert re.findall(r"^\s*server (\S+):8000", config, re.MULTILINE) == ["server-1", "server-2"]
    assert "include /etc/nginx/driftloop/proxy.conf;" in config
    listen = re.search(r"listen (\d+);", config).group(1)
    assert nginx["ports"] == [f"8088:{listen}"]
    for name in ("server-1", "server-2"):
        assert nginx["depends_on"][name]["condition"] == "service_healthy"


def test_the_celery_profile_adds_a_broker_two_workers_and_flower():
    """Drift checks on `default`, training on `training` (its worker with more memory), the
    result backend on Airflow's PostgreSQL, and everything the workers share where all reach
    it: driftloop's PostgreSQL, the MLflow server, storage.home on the shared volume."""
    celery = sorted(n for n, s in SERVICES.items() if "celery" in s.get("profiles", []))
    assert celery == ["airflow-worker", "airflow-worker-training", "flower", "redis"]
    env = SERVICES["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW_EXECUTOR:-LocalExecutor}"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].endswith("@postgres:5432/airflow")
    assert env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"] == "default"
    assert SERVICES["airflow-scheduler"]["depends_on"]["redis"]["required"] is False

    def queues(name: str) -> str:
        command = SERVICES[name]["command"]
        assert command[:3] == ["airflow", "celery", "worker"], name
        return command[command.index("--queues") + 1]

    assert queues("airflow-worker") == "default"
    assert queues("airflow-worker-training") == "training"
    from driftloop.orchestration.dag_support import TRAINING_QUEUE

    assert TRAINING_QUEUE == "training"

    def gib(name: str) -> int:
        return int(SERVICES[name]["mem_limit"].removesuffix("g"))

    assert gib("airflow-worker-training") > gib("airflow-worker")
    for name in ("airflow-worker", "airflow-worker-training"):
        worker = SERVICES[name]
        assert worker["environment"] == env  # the same settings as every component
        assert worker["environment"]["DRIFTLOOP_DATABASE__URL"].startswith("postgresql")
        assert worker["environment"]["DRIFTLOOP_MLFLOW__TRACKING_URI"] == "http://mlflow:5000"
        assert "driftloop-home:/var/lib/driftloop" in worker["volumes"]
        assert worker["environment"]["DRIFTLOOP_STORAGE__HOME"] == "/var/lib/driftloop"
        assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
        assert worker["depends_on"]["mlflow"]["condition"] == "service_healthy"
        assert worker["healthcheck"]["test"][0] == "CMD-SHELL"
        assert "inspect ping" in worker["healthcheck"]["test"][1]
    assert SERVICES["flower"]["command"][:3] == ["airflow", "celery", "flower"]
    assert SERVICES["redis"]["image"].startswith("redis:")


def test_prometheus_scrapes_every_prediction_server():
    """Each service running the server's command (the plain one and every replica) is a scrape
    target on the port it binds, so no replica's requests go uncounted."""
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    servers = {
        f"{name}:{service['environment']['DRIFTLOOP_BIND'].rsplit(':', 1)[1]}"
        for name, service in SERVICES.items()
        if service.get("command") == SERVICES["server"]["command"]
    }
    assert servers == {"server:8000", "server-1:8000", "server-2:8000"}
    assert servers <= targets


def test_start_order_and_volumes():
    for name in (
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "server",
        "server-1",
        "server-2",
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
    # `$${NAME}` is compose's escape: the container's shell expands it, not compose
    used = set(re.findall(r"(?<!\$)\$\{(\w+)", (ROOT / "docker-compose.yaml").read_text()))
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


# what docker prints when it has no compose plugin (the CLI since 23, and before it)
NO_COMPOSE_PLUGIN = ("docker: unknown command: docker compose", "'compose' is not a docker command")


def test_docker_compose_accepts_the_file(tmp_path):
    """Skips only when docker or its compose plugin is missing, never on another error."""
    if shutil.which("docker") is None:
        pytest.skip("no docker here")
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0 and any(m in probe.stderr for m in NO_COMPOSE_PLUGIN):
        pytest.skip(f"docker has no compose plugin here: {probe.stderr.strip()}")
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
    assert done.returncode == 0, done.stderr


def _exported_metric_names() -> set[str]:
    sources = [ROOT / "serving/metrics.py", ROOT / "include/driftloop/ui/gauges.py"]
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
        "performance_realized",
        "performance_estimated",
        "prediction_drift",
        "drift_feature_score",
        "model_version_info",
    ):
        assert needed in queried


def _airflow_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "airflow.cfg")
    return config


def test_airflow_cfg_is_sized_for_a_small_machine():
    config = _airflow_cfg()
    assert config["core"]["executor"] == "LocalExecutor"
    assert int(config["core"]["parallelism"]) <= 8
    keys = {key for section in config.sections() for key in config[section]}
    assert not keys & {"jwt_secret", "secret_key", "fernet_key"}  # secrets come from the env


def test_airflow_cfg_names_only_options_airflow_knows():
    """A misspelt option is silently ignored by Airflow; check against its own option list and
    the Celery provider's ([celery], [celery_broker_transport_options])."""
    from airflow.providers.celery.get_provider_info import get_provider_info

    package = importlib.util.find_spec("airflow").submodule_search_locations[0]
    known = yaml.safe_load((Path(package) / "config_templates/config.yml").read_text())
    known |= get_provider_info()["config"]
    config = _airflow_cfg()
    for section in config.sections():
        assert section in known, f"airflow.cfg: unknown section [{section}]"
        for key in config[section]:
            assert key in known[section]["options"], f"airflow.cfg: unknown [{section}] {key}"


def _driftloop_services() -> dict[str, dict]:
    return {name: s for name, s in SERVICES.items() if s.get("image") == "driftloop:latest"}


def test_airflow_components_share_the_project_config_and_every_secret():
    workdir = re.search(r"^WORKDIR (\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)[1]
    for name, service in _driftloop_services().items():
        env = service["environment"]
        assert env["AIRFLOW_CONFIG"] == f"{workdir}/airflow.cfg", name  # the COPY puts it there
        for shared in (
            "AIRFLOW__CORE__FERNET_KEY",
            "AIRFLOW__API_AUTH__JWT_SECRET",
            "AIRFLOW__API__SECRET_KEY",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
        ):
            assert env[shared] == SERVICES["airflow-scheduler"]["environment"][shared], name


def test_every_airflow_component_loads_the_projects_plugins():
    """The driftloop plugin must be in every component's plugins folder (the api-server serves
    it; the others load it too), and that folder is the image's copy of plugins/."""
    workdir = re.search(r"^WORKDIR (\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)[1]
    assert (ROOT / "plugins" / "driftloop_plugin.py").is_file()
    for name, service in _driftloop_services().items():
        if name.startswith("airflow-"):
            assert service["environment"]["AIRFLOW__CORE__PLUGINS_FOLDER"] == f"{workdir}/plugins"


def test_the_image_owns_every_folder_a_volume_mounts():
    """Docker gives a new named volume the ownership of the image's folder: a folder the image
    lacks is mounted root-owned, and the non-root user cannot write there."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    made = set(re.search(r"mkdir -p ([^\\&]+)", dockerfile)[1].split())
    owned = re.search(r"chown -R \S+ ([^\n]+)", dockerfile)[1].split()
    for name, service in _driftloop_services().items():
        for volume in service["volumes"]:
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                continue
            assert target in made, f"{name}: the image does not make {target}"
            assert any(target.startswith(folder) for folder in owned), f"{name}: {target}"


def test_mlflow_accepts_the_host_the_other_services_call_it_by():
    command = SERVICES["mlflow"]["command"]
    allowed = command[command.index("--allowed-hosts") + 1].split(",")
    called = urlsplit(SERVICES["server"]["environment"]["DRIFTLOOP_MLFLOW__TRACKING_URI"])
    assert called.netloc in allowed and "localhost:5000" in allowed  # and the browser's


def test_postgres_is_healthy_only_once_it_listens_on_tcp():
    """During first start the image's temporary server runs the init SQL on the socket only."""
    test = SERVICES["postgres"]["healthcheck"]["test"]
    assert "pg_isready" in test and test[test.index("-h") + 1] == "127.0.0.1"
