"""Registry benchmark: how many alias look-ups per second one MLflow server answers, the call
every prediction-server process makes for ``production`` and ``staging`` every
``serving.poll_seconds``.

Why: issue 19 (item 4) asks how the MLflow server scales with replicas. A server process asks
for two aliases per poll, so P processes polling every S seconds cost 2 P / S look-ups per
second; this measures what one ``mlflow server --workers 1`` on PostgreSQL answers, so
``docs/scaling.md`` can say how many server processes one MLflow worker carries.

What: a real ``mlflow server`` (``driftloop.stack.mlflow_server``, PostgreSQL backend store,
the way the compose stack runs it), a registered model whose versions hold the two aliases,
then ``--seconds`` of closed-loop ``registry.by_alias`` calls from 1 and from ``--clients``
threads; look-ups/s and p50/p99 latency, and the 1-minute load average before each.

    .venv/bin/python benchmarks/registry_poll_bench.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from mlflow import MlflowClient
from support.common import POSTGRES_ADMIN_URL, add_smoke, fresh_postgres

from driftloop import registry
from driftloop.stack.mlflow_server import MlflowServer
from driftloop.stages import role_moves

DATABASE = "driftloop_bench_registry"
MODEL = "bench-model"


def register_two_versions(client: MlflowClient, folder: Path) -> None:
    """Two versions of a model, holding ``production`` and ``staging``; their source is a run's
    artifact folder with one small file (a look-up reads no artifact)."""
    source = folder / "model"
    source.mkdir()
    (source / "MLmodel").write_text("flavors: {}\n")
    run = client.create_run(client.create_experiment("bench-registry"))
    client.log_artifacts(run.info.run_id, str(source), "model")
    client.set_terminated(run.info.run_id)
    role_moves.ensure_registered_model(client, MODEL)
    for role in (registry.Role.PRODUCTION, registry.Role.STAGING):
        version = client.create_model_version(
            MODEL, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id
        )
        role_moves.set_role(client, MODEL, version.version, role)


def look_ups(tracking_uri: str, clients: int, seconds: float) -> tuple[float, float, float]:
    """Closed-loop alias look-ups from ``clients`` threads: per second, p50 and p99 ms."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    stop = threading.Event()

    def client_loop(index: int) -> None:
        client = MlflowClient(tracking_uri)
        roles = (registry.Role.PRODUCTION, registry.Role.STAGING)
        while not stop.is_set():
            began = time.perf_counter()
            if registry.by_alias(client, MODEL, roles[len(latencies[index]) % 2]) is None:
                raise RuntimeError("an alias look-up found no version")
            latencies[index].append(time.perf_counter() - began)

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    every = sorted(x for client in latencies for x in client)
    p99 = every[int(0.99 * (len(every) - 1))]
    return len(every) / seconds, statistics.median(every) * 1000, p99 * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-admin-url", default=POSTGRES_ADMIN_URL)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    add_smoke(parser)
    args = parser.parse_args()
    if args.smoke:  # one short window per client count
        args.clients, args.seconds = 2, 1.0
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")

    with tempfile.TemporaryDirectory() as folder:
        server = MlflowServer(fresh_postgres(args.postgres_admin_url, DATABASE), Path(folder))
        server.start()
        try:
            client = MlflowClient(server.tracking_uri)
            register_two_versions(client, Path(folder))
            look_ups(server.tracking_uri, 1, 2.0)  # warm-up
            rows = []
            for clients in (1, args.clients):
                load = os.getloadavg()[0]
                rows.append((clients, *look_ups(server.tracking_uri, clients, args.seconds), load))
        finally:
            server.stop()

    print(f"\n{os.cpu_count()} cores, mlflow server --workers 1 on PostgreSQL\n")
    print("| clients | look-ups/s | p50 ms | p99 ms | load avg (1 min) before |")
    print("|---|---|---|---|---|")
    for clients, rate, p50, p99, load in rows:
        print(f"| {clients} | {rate:,.0f} | {p50:.1f} | {p99:.1f} | {load:.2f} |")
    if args.smoke and not all(rate > 0 for _, rate, *_ in rows):
        raise SystemExit("smoke: no look-up answered")


if __name__ == "__main__":
    main()
