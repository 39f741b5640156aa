"""The prediction server under gunicorn, as production runs it (``serving/gunicorn.conf.py``)."""

from __future__ import annotations

from pathlib import Path

from driftloop.stack.processes import VENV_BIN, HttpService
from driftloop.stack.project import gunicorn_config

GUNICORN = str(VENV_BIN / "gunicorn")


class PredictionServer(HttpService):
    """``gunicorn -c serving/gunicorn.conf.py 'serving.app:create_app()'``, ready once ``/ready``
    answers 200 (a Production model is loaded); stopped gracefully so workers drain their logs."""

    name = "the prediction server"
    ready_path = "/ready"

    def __init__(
        self,
        env: dict[str, str],
        workdir: Path,
        port: int | None = None,
        workers: int = 1,
        startup_timeout: float = 120.0,
        stop_grace: float = 30.0,
    ) -> None:
        super().__init__(workdir, "gunicorn.log", port, startup_timeout, stop_grace)
        self.base_env, self.workers = dict(env), workers

    def command(self) -> tuple[list[str], dict[str, str]]:
        env = {
            **self.base_env,
            "DRIFTLOOP_BIND": f"127.0.0.1:{self.port}",
            "DRIFTLOOP_WORKERS": str(self.workers),
            "PROMETHEUS_MULTIPROC_DIR": str(self.workdir / "metrics"),
        }
        app = "serving.app:create_app()"
        return [GUNICORN, "-c", str(gunicorn_config()), app], env
