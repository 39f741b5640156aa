"""Replica benchmark: one-record ``/predict`` throughput through nginx in front of 1 and 2
prediction-server replicas that share a PostgreSQL prediction log.

Why: issue 19 (item 2) asks what a second replica buys. On a 2-core machine shared by the
load generator, nginx, the replicas and their log writers, the point is that nothing is lost
or refused; the figures say what they say, and ``docs/scaling.md`` turns the per-replica
throughput into replica counts.

What:

1. a home (``var/bench-replicas``, ignored by git) bootstrapped with ExtraTrees by
   ``serving_bench.prepare_home``, its prediction log in a fresh PostgreSQL database;
2. for each replica count in ``--replicas`` (default 1 2): that many gunicorn replicas
   (``driftloop.stack.prediction_server``, ``--workers`` each, their own ports and log
   writers) behind nginx (``driftloop.stack.load_balancer``, the compose stack's proxy file);
3. ``--rounds`` rounds of closed-loop one-record load from ``--clients`` clients through nginx
   (serving_bench's load generator), then a graceful stop of the replicas, which drain their
   writers; the rows logged for the configuration must equal the requests answered 200;
4. requests/s, p50, p99, errors, rows logged, and the 1-minute load average before each
   configuration, printed as a Markdown table (``--json PATH`` saves them).

Run from outside the repository (PyCaret may write ./logs.log), with PostgreSQL at
``--postgres-admin-url`` (trust) and nginx installed, about 4 minutes on 2 cores:

    cd /tmp && /work/main/.venv/bin/python /work/main/benchmarks/replicas_bench.py
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import sqlalchemy as sa
from support.common import CONFIG, POSTGRES_ADMIN_URL, ROOT, add_smoke, cpu_model, fresh_postgres
from support.homes import feature_frame, prepare_home, smoke_home
from support.load import one_record_bodies, predict_round, summarize
from support.servers import Server, clean_env, wait_for_quiet

log = logging.getLogger("replicas_bench")
DEFAULT_HOME = ROOT / "var" / "bench-replicas"
DATABASE = "driftloop_bench_replicas"


@dataclass
class Configuration:
    """One replica count's figures over every round."""

    replicas: int
    workers_per_replica: int
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    answered_200: int  # every 200, warm-up and rounds' edges included
    rows_logged: int
    load1_before: float


def logged_rows(engine: sa.Engine) -> int:
    from driftloop.storage import Prediction

    with engine.connect() as connection:
        query = sa.select(sa.func.count()).where(
            Prediction.status == 200, Prediction.shadow.is_(False)
        )
        return connection.execute(query.select_from(Prediction)).scalar_one()


def measure(
    settings, url: str, replicas: int, args: argparse.Namespace, bodies: list[bytes]
) -> Configuration:
    """``replicas`` servers behind nginx under load; stopped (gracefully) before counting."""
    from driftloop.stack.load_balancer import LoadBalancer
    from driftloop.stack.prediction_server import PredictionServer
    from driftloop.storage import make_engine

    engine = make_engine(url)
    before = logged_rows(engine)
    env = clean_env()
    env.update(
        DRIFTLOOP_CONFIG=str(CONFIG),
        DRIFTLOOP_STORAGE__HOME=str(settings.storage.home),
        DRIFTLOOP_DATABASE__URL=url,
    )
    run_dir = settings.storage.home / f"run-{replicas}"
    servers = [
        PredictionServer(env, run_dir / f"replica-{i}", workers=args.workers)
        for i in range(replicas)
    ]
    windows, answered = [], 0
    try:
        for server in servers:
            server.start()
        upstreams = [f"127.0.0.1:{s.port}" for s in servers]
        with LoadBalancer(upstreams, run_dir / "nginx") as balancer:
            target = Server("nginx", balancer.process, balancer.url, balancer.log_path)
            if not args.smoke:  # a smoke run checks that it runs, not how fast
                wait_for_quiet(args.quiet_below, args.quiet_wait)
            load1 = os.getloadavg()[0]
            headers = {"Content-Type": "application/json"}
            for _ in range(args.rounds):
                window = predict_round(
                    target, bodies, headers, args.clients, args.warmup, args.seconds
                )
                windows.append(window)
            # every replica's own count of 200s, warm-up included
            answered = sum(_answered_200(s.url) for s in servers)
    finally:
        for server in servers:
            server.stop()  # graceful: each writer drains into PostgreSQL
    rows = logged_rows(engine) - before
    engine.dispose()
    figures = summarize("nginx", "/predict", "all", windows)
    return Configuration(
        replicas,
        args.workers,
        figures.requests,
        figures.errors,
        figures.rps,
        figures.p50_ms,
        figures.p99_ms,
        answered,
        rows,
        load1,
    )


def _answered_200(url: str) -> int:
    import requests
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(f"{url}/metrics", timeout=10).text
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "driftloop_requests_total"
            # every model's /predict (the series carry a ``model`` label)
            and {k: v for k, v in sample.labels.items() if k != "model"}
            == {"endpoint": "predict", "status": "200"}
        )
    )


def render(machine: dict, command: str, results: list[Configuration]) -> str:
    lines = [
        f"Machine: {machine['cpu']}, {machine['cores']} cores; {machine['date']}; "
        f"Python {machine['python']}.",
        f"Command: `{command}`",
        "",
        "| replicas x workers | requests/s | p50 ms | p99 ms | errors | answered 200 "
        "| rows logged | load avg (1 min) before |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.replicas} x {r.workers_per_replica} | {r.rps:.0f} | {r.p50_ms:.1f} "
            f"| {r.p99_ms:.1f} | {r.errors} | {r.answered_200} | {r.rows_logged} "
            f"| {r.load1_before:.2f} |"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME)
    parser.add_argument("--reuse-home", action="store_true")
    parser.add_argument("--postgres-admin-url", default=POSTGRES_ADMIN_URL)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers per replica")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quiet-below", type=float, default=0.5)
    parser.add_argument("--quiet-wait", type=float, default=30.0)
    parser.add_argument("--json", type=Path)
    add_smoke(parser)
    args = parser.parse_args()
    if args.smoke:  # one replica, one short round, on the shared smoke home
        args.replicas, args.clients, args.rounds = [1], 2, 1
        args.warmup, args.seconds, args.quiet_wait = 0.5, 1.0, 0.0
    return args


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parse_args()
    url = fresh_postgres(args.postgres_admin_url, DATABASE)
    if args.smoke:
        settings = smoke_home(database_url=url)
    else:
        settings = prepare_home(args.home, args.reuse_home, database_url=url)
    from driftloop.schema import upgrade
    from driftloop.storage import make_engine

    engine = make_engine(url)
    upgrade(engine)  # a reused home was bootstrapped against an earlier database
    engine.dispose()
    bodies = one_record_bodies("driftloop", feature_frame(settings, 1000))
    results = [measure(settings, url, n, args, bodies) for n in args.replicas]
    machine = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "python": platform.python_version(),
    }
    command = " ".join([Path(sys.executable).name, *sys.argv])
    print(render(machine, command, results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    lost = [r for r in results if r.errors or r.rows_logged != r.answered_200]
    if lost:
        raise SystemExit(f"requests failed or rows went missing: {lost}")


if __name__ == "__main__":
    main()
