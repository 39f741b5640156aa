"""The installed package, checked from a folder that is not the checkout (``ci/wheel_check.sh``
runs this with the fresh virtualenv's Python, after replaying the Dockerfile's installs).

Each step states what it checks and stops the run with a sentence when it fails: the install
holds every file of the wheel ``uv build`` made and every module of the checkout's source;
every module imports from site-packages; ``driftloop --help`` and ``driftloop config check``
answer; gunicorn with the installed ``serving/gunicorn.conf.py`` serves ``/health`` and one
``/predict`` for a registered model; every DAG file parses; ``airflow plugins`` loads the plugin.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import pkgutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
import urllib.request
import zipfile
from pathlib import Path

SITE = Path(sysconfig.get_paths()["purelib"]).resolve()
BIN = Path(sys.executable).parent
PACKAGES = ("driftloop", "serving")
# Alembic's environment script runs inside an Alembic command only (schema.upgrade, used below
# to register the model, runs it from the install)
NOT_IMPORTABLE = {"driftloop.migrations.env"}


def fail(message: str) -> None:
    sys.exit(f"wheel check FAILED: {message}")


STARTED = time.monotonic()


def step(message: str) -> None:
    print(f"-- [{time.monotonic() - STARTED:4.0f}s] {message}", flush=True)


def check_contents(wheel: Path, checkout: Path) -> None:
    """The install is the wheel's files, and the wheel has every source file of the checkout
    (a package or a data file left out of the wheel fails here, whatever pyproject says)."""
    installed = {str(f) for f in importlib.metadata.distribution("driftloop").files or []}
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = {n for n in archive.namelist() if not n.startswith("driftloop-")}
    if missing := in_wheel - installed:
        fail(f"the Dockerfile's install lacks files of the built wheel: {sorted(missing)}")
    sources = {
        str(path.relative_to(root))
        for root, package in ((checkout / "include", "driftloop"), (checkout, "serving"))
        for path in (root / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    if missing := sources - in_wheel:
        fail(f"files of the checkout's packages are not in the wheel: {sorted(missing)}")
    step(f"the install holds the wheel's {len(in_wheel)} files, every source file included")


def check_imports() -> None:
    """Every module of both packages imports, from site-packages (not from a checkout)."""
    count = 0
    for name in PACKAGES:
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(package.__path__, f"{name}."):
            if info.name in NOT_IMPORTABLE:
                continue
            module = importlib.import_module(info.name)
            where = Path(module.__file__ or "").resolve()
            if not where.is_relative_to(SITE):
                fail(f"{info.name} was imported from {where}, not from {SITE}")
            count += 1
    step(f"{count} modules of driftloop and serving import from {SITE}")


def run(command: list[str], env: dict[str, str], expect: str) -> str:
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0 or expect not in done.stdout:
        fail(f"`{' '.join(command)}` exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def register_model(env: dict[str, str]) -> None:
    """A small model in Production, without training (cheap): fit on the configured features."""
    code = """
import numpy as np, pandas as pd, mlflow, mlflow.sklearn
from sklearn.dummy import DummyClassifier
from driftloop.stages import role_moves
from driftloop import registry
from driftloop.schema import upgrade
from driftloop.settings_loader import load_settings
from driftloop.storage import make_engine
settings = load_settings()
upgrade(make_engine(settings.database_url))
client = registry.configure(settings)
role_moves.ensure_registered_model(client, settings.model.name)
frame = pd.DataFrame(np.ones((4, len(settings.feature_columns))), columns=settings.feature_columns)
model = DummyClassifier(strategy="most_frequent").fit(frame, [5, 6, 6, 7])
with mlflow.start_run():
    info = mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle")
version = mlflow.register_model(info.model_uri, settings.model.name).version
role_moves.set_role(client, settings.model.name, str(version), registry.PRODUCTION)
"""
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        fail(f"registering a model failed:\n{done.stderr[-3000:]}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def check_serving(env: dict[str, str], work: Path) -> None:
    """gunicorn with the installed config file (package data) answers /health and /predict."""
    config = SITE / "serving" / "gunicorn.conf.py"
    if not config.is_file():
        fail(f"{config} is not installed")
    register_model(env)
    port = free_port()
    server_env = {**env, "DRIFTLOOP_BIND": f"127.0.0.1:{port}", "DRIFTLOOP_WORKERS": "1"}
    server_env["PROMETHEUS_MULTIPROC_DIR"] = str(work / "metrics")
    command = [str(BIN / "gunicorn"), "-c", str(config), "serving.app:create_app()"]
    with (work / "gunicorn.log").open("wb") as log:
        server = subprocess.Popen(
            command, env=server_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:  # /ready answers 200 once the Production model is loaded
            if server.poll() is not None:
                fail(f"gunicorn exited {server.returncode}:\n{(work / 'gunicorn.log').read_text()}")
            try:
                if get(f"{base}/ready")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                fail(f"gunicorn not ready in 90 s:\n{(work / 'gunicorn.log').read_text()}")
            time.sleep(0.2)  # polling a starting process; the deadline bounds it
        status, _ = get(f"{base}/health")
        if status != 200:
            fail(f"/health answered {status}")
        record = dict.fromkeys(json.loads(env["WHEEL_CHECK_FEATURES"]), 1.0)
        status, answer = get(f"{base}/predict", {"record": record})
        if status != 200 or len(answer.get("predictions") or []) != 1:
            fail(f"/predict answered {status}: {answer}")
        step(f"gunicorn ({config}) served /health and /predict: {answer}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(60)


def check_airflow(env: dict[str, str], project: Path, work: Path) -> None:
    """Every DAG file of the project parses against the installed package; the plugin loads."""
    airflow_env = {
        **env,
        "AIRFLOW_HOME": str(work / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(project / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(project / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    files = sorted(p.name for p in (project / "dags").glob("*.py"))
    code = (
        "import json, sys\nfrom airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(project / 'dags')!r})\n"
        "print(json.dumps({'errors': {k: str(v) for k, v in bag.import_errors.items()},"
        " 'files': sorted({d.fileloc.rsplit('/', 1)[-1] for d in bag.dags.values()})}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=airflow_env, capture_output=True, text=True
    )
    if done.returncode != 0:
        fail(f"parsing the DAGs failed:\n{done.stderr[-3000:]}")
    parsed = json.loads(done.stdout.strip().splitlines()[-1])
    if parsed["errors"] or parsed["files"] != files:
        fail(f"DAG files {files}, parsed {parsed['files']}, errors {parsed['errors']}")
    step(f"{len(files)} DAG files parse: {', '.join(files)}")
    run([str(BIN / "airflow"), "plugins"], airflow_env, "driftloop")  # the plugin's name
    step("airflow plugins loads the driftloop plugin")


def check_project_folders(project: Path) -> None:
    """From a wheel, the code that needs the project's folders (the demo's dags/ and plugins/,
    the load balancer's nginx proxy.conf) says what it needs and where it looked, and finds
    them once pointed at a project (the image's /opt/driftloop)."""
    from driftloop.stack.processes import StackError
    from driftloop.stack.project import PROJECT_ENV, gunicorn_config, project_path

    os.environ.pop(PROJECT_ENV, None)
    try:
        project_path("dags")
    except StackError as error:
        if "Looked in" not in str(error) or PROJECT_ENV not in str(error):
            fail(f"a missing dags/ is not explained: {error}")
    else:
        fail("dags/ was found although neither the folder nor the install has it")
    os.environ[PROJECT_ENV] = str(project)
    for folder in ("dags", "plugins", "deploy/nginx/proxy.conf"):
        if project_path(folder) != project / folder:
            fail(f"{folder} not found in {project} with {PROJECT_ENV} set")
    if gunicorn_config() != SITE / "serving" / "gunicorn.conf.py":
        fail(f"gunicorn's config is {gunicorn_config()}, not the installed one")
    step(f"without a project the stack says where it looked; with {PROJECT_ENV} it finds it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--wheel", type=Path, required=True)
    parser.add_argument("--checkout", type=Path, required=True)
    parser.add_argument("--project", type=Path, required=True, help="the image's /opt/driftloop")
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args()
    if Path.cwd().resolve().is_relative_to(args.checkout.resolve()):
        fail("run from a folder outside the checkout")
    check_contents(args.wheel, args.checkout)
    check_imports()
    check_project_folders(args.project)
    # the image's configuration: DRIFTLOOP_CONFIG=/opt/driftloop/driftloop.yaml
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIFTLOOP_", "AIRFLOW"))}
    env["DRIFTLOOP_CONFIG"] = str(args.project / "driftloop.yaml")
    env["DRIFTLOOP_STORAGE__HOME"] = str(args.work / "home")
    run([str(BIN / "driftloop"), "--help"], env, "Usage")
    out = run([str(BIN / "driftloop"), "config", "check"], env, "config ok")
    step(f"driftloop --help and config check answer: {out.splitlines()[0]}")
    from driftloop.settings_loader import load_settings

    env["WHEEL_CHECK_FEATURES"] = json.dumps(load_settings(env["DRIFTLOOP_CONFIG"]).feature_columns)
    # Airflow's checks are processes of their own: run them while gunicorn is checked
    airflow_failed: list[BaseException] = []

    def airflow_checks() -> None:
        try:
            check_airflow(env, args.project, args.work)
        except BaseException as exc:  # SystemExit from fail(), reported below
            airflow_failed.append(exc)

    airflow = threading.Thread(target=airflow_checks, name="airflow-checks")
    airflow.start()
    check_serving(env, args.work)
    airflow.join()
    if airflow_failed:
        raise airflow_failed[0]


if __name__ == "__main__":
    main()
