"""gunicorn settings for the prediction server: threaded workers, graceful shutdown, and
Prometheus multiprocess mode so ``/metrics`` adds up every worker.

    gunicorn -c serving/gunicorn.conf.py 'serving.app:create_app()'

Environment: ``DRIFTLOOP_BIND`` (127.0.0.1:8000), ``DRIFTLOOP_WORKERS`` (2),
``DRIFTLOOP_THREADS`` (16), ``DRIFTLOOP_ACCESS_LOG`` (off; ``-`` for stdout),
``DRIFTLOOP_PIN_CPUS`` (``auto``: one core per worker when workers equal cores; ``0``, ``1``),
``PROMETHEUS_MULTIPROC_DIR`` (a fresh temporary folder when unset), and the usual
DRIFTLOOP_* config.
"""

import os
import shutil
import tempfile

bind = os.environ.get("DRIFTLOOP_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("DRIFTLOOP_WORKERS", "2"))
# 16, not 8: a worker's micro-batch holds at most one row per thread, and a batch costs the
# model about the same for 8 rows as for 16 (32 connections: 1.48 -> 1.27 ms of server CPU
# per one-record request, docs/benchmarks-serving.md)
threads = int(os.environ.get("DRIFTLOOP_THREADS", "16"))
worker_class = "serving.gunicorn_worker.DrainingThreadWorker"  # gthread, drained at stop
timeout = 60
graceful_timeout = 30  # workers drain the prediction log before they exit
keepalive = 5
# Off by default: the prediction log already records every /predict request (status, latency,
# variant), and gunicorn's access line costs about a quarter of a one-record request's CPU.
# DRIFTLOOP_ACCESS_LOG=- writes it to stdout (or give a file path).
accesslog = os.environ.get("DRIFTLOOP_ACCESS_LOG") or None

# Must be set before any worker imports prometheus_client.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="driftloop-metrics-"))


def on_starting(server) -> None:
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(folder, ignore_errors=True)  # stale files from an earlier run would add up
    os.makedirs(folder, exist_ok=True)


def post_fork(server, worker) -> None:
    """Keep each worker on one core when there is one core per worker.

    A Python process whose threads run on two cores loses time handing the GIL between them
    (measured here: 173 against 261 requests/s for one worker). ``DRIFTLOOP_PIN_CPUS``: ``auto``
    (the default) pins only when workers equal the available cores, ``1`` always, ``0`` never.
    The prediction-log writer each worker starts is not pinned.
    """
    choice = os.environ.get("DRIFTLOOP_PIN_CPUS", "auto")
    if not hasattr(os, "sched_setaffinity") or choice == "0":
        return
    cores = sorted(os.sched_getaffinity(0))
    if choice == "1" or (choice == "auto" and server.cfg.workers == len(cores)):
        taken: set[int] = set()  # cores of the sibling workers (a restarted worker fills a gap)
        for pid in list(server.WORKERS):
            if pid != os.getpid():
                try:
                    affinity = os.sched_getaffinity(pid)
                except OSError:
                    continue
                if len(affinity) == 1:
                    taken |= affinity
        free = [core for core in cores if core not in taken] or cores
        os.sched_setaffinity(0, {free[0]})


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def worker_exit(server, worker) -> None:
    """Drain the prediction log and stop the model threads before the worker goes."""
    app = getattr(worker, "wsgi", None)
    shutdown = getattr(app, "extensions", {}).get("driftloop", {}).get("shutdown")
    if shutdown is not None:
        shutdown()
