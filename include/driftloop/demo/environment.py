"""The demo's set-up: the environment its services and commands share, the stream it lands,
and the ``driftloop`` commands it runs in the background (see :mod:`driftloop.demo.loop`)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from driftloop.config import Settings
from driftloop.stack.processes import VENV_BIN, StackError

SCENARIO = "concept"  # features shift and the labels move with them: the old model is wrong
SHIFTED = ("alcohol", "pH", "density", "residual sugar", "chlorides")
CLEAN_BATCHES, DRIFTING_BATCHES = 3, 3  # the drifting ones land together, as a day's data


def environment(config: Path, home: Path, driftloop_database: str | None) -> dict[str, str]:
    """What every service and command of the demo sees: the config, the home, MLflow's patience."""
    env = {
        "DRIFTLOOP_CONFIG": str(config.resolve()),
        "DRIFTLOOP_STORAGE__HOME": str(home),
        "DRIFTLOOP_MLFLOW__TRACKING_URI": "",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
        "PATH": os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")]),
    }
    if driftloop_database:
        env["DRIFTLOOP_DATABASE__URL"] = driftloop_database
    return env


@contextlib.contextmanager
def environment_applied(env: dict[str, str]) -> Iterator[None]:
    """This process sees what the services see (its own calls load the same settings)."""
    saved = {
        k: os.environ.get(k) for k in [*env, *[k for k in os.environ if k.startswith("DRIFTLOOP_")]]
    }
    for key in list(os.environ):
        if key.startswith("DRIFTLOOP_") and key not in env and key != "DRIFTLOOP_TEST_POSTGRES_URL":
            del os.environ[key]
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C: the services are stopped on the way out."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def prepare_stream(settings: Settings, say: Callable[[str], None]) -> list[dict[str, Any]]:
    """The database, the reference split, and the stream: the first batches to land one by one
    (clean, then drifting), the rest held back as the traffic no model ever trains on."""
    import pandas as pd

    from driftloop.data import read_table
    from driftloop.ingestion.stream import build_reference, replay
    from driftloop.schema import upgrade
    from driftloop.storage import make_engine

    engine = make_engine(settings.database_url)
    upgrade(engine, model_name=settings.model.name)
    engine.dispose()
    build_reference(settings)
    written = replay(settings, SCENARIO, start_batch=CLEAN_BATCHES, shift_features=SHIFTED)
    landing, held_back = (
        written[: CLEAN_BATCHES + DRIFTING_BATCHES],
        written[CLEAN_BATCHES + DRIFTING_BATCHES :],
    )
    stream = settings.storage.home / "stream"
    stream.mkdir()
    for batch in landing:
        shutil.move(str(batch.path), stream / batch.path.name)
    frame = pd.concat([read_table(b.path, settings.data) for b in held_back], ignore_index=True)
    traffic_dir = settings.storage.home / "traffic"
    traffic_dir.mkdir()
    for batch in held_back:
        shutil.move(str(batch.path), traffic_dir / batch.path.name)
    say(
        f"stream: {CLEAN_BATCHES} clean and {DRIFTING_BATCHES} drifting batches to land "
        f"({SCENARIO} shift of {', '.join(SHIFTED)}); {len(held_back)} batches held back as traffic"
    )
    return frame.to_dict("records")


def start_cli(
    env: dict[str, str], home: Path, *args: str, log_name: str | None = None
) -> subprocess.Popen[str]:
    """``driftloop <args>`` in the background, its output in ``<home>/cli-<log_name>.log``
    (by default the command's name)."""
    with (home / f"cli-{log_name or args[0]}.log").open("w") as log:  # the child keeps its own
        return subprocess.Popen(
            [str(VENV_BIN / "driftloop"), *args],
            env={**os.environ, **env},
            cwd=home,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )


def finish_cli(process: subprocess.Popen[str], name: str, timeout: float) -> None:
    """Wait for a command :func:`start_cli` started; a failure or a hang is a StackError."""
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise StackError(f"`driftloop {name}` took over {timeout:.0f} s") from None
    if process.returncode != 0:
        raise StackError(f"`driftloop {name}` exited with {process.returncode}; see cli-{name}.log")


def plugin_page(
    airflow: Any, say: Callable[[str], None], api: str = "/driftloop/api/overview"
) -> str:
    """Check that the api-server mounted the driftloop plugin (plugins/) and say where its page
    is: in Airflow's navigation, and the app's own URL. ``api`` is the route asked: the one
    model's overview, or ``/driftloop/api/models`` (every model's row) for a config of several."""
    answer = airflow.fetch(api)
    if answer.status_code != 200:
        raise StackError(
            f"the driftloop plugin did not answer ({answer.status_code}: {answer.text[:300]}); "
            "see the api-server's log"
        )
    page = f"{airflow.base_url}/plugin/driftloop"
    say(f"driftloop page in Airflow: {page} (the app itself: {airflow.base_url}/driftloop/)")
    return page
