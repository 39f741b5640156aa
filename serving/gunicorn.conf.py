"""gunicorn settings for the prediction server: threaded workers, graceful shutdown, and
Prometheus multiprocess mode so ``/metrics`` adds up every worker.

    gunicorn -c serving/gunicorn.conf.py 'serving.app:create_app()'

Environment: ``DRIFTLOOP_BIND`` (127.0.0.1:8000), ``DRIFTLOOP_WORKERS`` (2), ``DRIFTLOOP_THREADS`` (8),
``PROMETHEUS_MULTIPROC_DIR`` (a fresh temporary folder when unset), and the usual DRIFTLOOP_* config.
"""

import os
import shutil
import tempfile

bind = os.environ.get("DRIFTLOOP_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("DRIFTLOOP_WORKERS", "2"))
threads = int(os.environ.get("DRIFTLOOP_THREADS", "8"))
worker_class = "gthread"
timeout = 60
graceful_timeout = 30  # workers drain the prediction log before they exit
keepalive = 5
accesslog = "-"

# Must be set before any worker imports prometheus_client.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="driftloop-metrics-"))


def on_starting(server) -> None:
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(folder, ignore_errors=True)  # stale files from an earlier run would add up
    os.makedirs(folder, exist_ok=True)


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def worker_exit(server, worker) -> None:
    """Drain the prediction log and stop the model threads before the worker goes."""
    app = getattr(worker, "wsgi", None)
    shutdown = getattr(app, "extensions", {}).get("driftloop", {}).get("shutdown")
    if shutdown is not None:
        shutdown()
