"""Many models in one server (issue 30, item 6): 50 registered models behind one driftloop
server, against a server of one model, in one run.

Why: a server of many models keeps at most ``serving.max_loaded_models`` of them loaded per
worker (``serving/fleet.py``) and loads the others on demand. The issue asks what that costs:
a warm model must answer as fast as it would from a server of its own (requests/s and p99
within 10%); a request for an evicted model pays a load (how long?); each resident model
weighs some memory, which must come back when it is evicted; and the DAG files must still
parse quickly with 50 models declared.

What:

1. a home (``var/bench-many-models``, ignored by git) with ``--models`` models of mixed
   kinds (``support/fleet_home.py``: forests, trees, boosting and linear models, classifiers
   and regressions on the white and red wine, fitted with scikit-learn in under a second
   each, logged with their signature and registered as version 1, Production), one shared
   SQLite database, ``serving.max_loaded_models`` = ``--max-loaded``;
2. two servers at once under gunicorn with the project's ``serving/gunicorn.conf.py``, the
   same workers and threads: the many-model server (every model of the config) and a
   one-model server of the first model (``DRIFTLOOP_MODEL__NAME``; its own SQLite log);
3. memory: on the fresh many-model server one keep-alive client (one worker) asks each model
   once, in order; the workers' RSS after each answer (once it settles): what each resident
   model adds, and RSS once the cap is reached and models are evicted;
4. cold loads: the same client cycles through every model ``--cold-cycles`` times, so each
   request names a model its worker evicted (more distinct models than the cap; the server's
   ``driftloop_model_loads_total`` counts the loads): p50 and p99 by kind, beside a warm
   request on the same connection;
5. warm load: ``--clients`` closed-loop clients of one-record requests (``support/load.py``,
   serving_bench's load generator) against the first model, ``/models/<name>/predict`` on the
   many-model server and ``/predict`` on the one-model server, in ``--rounds`` rounds that
   alternate the servers; requests/s and p99 side by side and their ratio;
6. DAG parse time with these models declared (``support/dags.py``, as ``dag_parse.py``): the
   five files of ``dags/`` and three per-model files, each in a fresh interpreter, after the
   servers are stopped.

    .venv/bin/python benchmarks/many_models.py                  # 50 models (~6 min)
    .venv/bin/python benchmarks/many_models.py --smoke          # 4 models, short rounds
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from support.common import ROOT, add_smoke, machine, versions
from support.dags import dag_files, interval, parse
from support.fleet_home import fleet_home, model_names, single_database
from support.load import LoadResult, load_window, one_record_bodies, summarize
from support.servers import (
    Server,
    rss_mib,
    running,
    start_gunicorn,
    wait_for_quiet,
    worker_pids,
)

DEFAULT_HOME = ROOT / "var" / "bench-many-models"
SMOKE_HOME = ROOT / "var" / "bench-smoke-home-many-models"
TARGET_RATIO = 0.10  # warm requests/s and p99 within 10% of a one-model server
HEADERS = {"Content-Type": "application/json", "X-Variant": "production"}

log = logging.getLogger("many_models")


# --- one sequential client -----------------------------------------------------------------


def records(settings: Any, count: int) -> list[bytes]:
    """``count`` one-record bodies of the model's own rows."""
    from driftloop.data import read_table

    frame = read_table(settings.data.path, settings.data)
    return one_record_bodies("driftloop", frame[list(settings.feature_columns)].head(count))


def post(session: Any, server: Server, path: str, body: bytes) -> float:
    """One request's client-side seconds; fails loudly on anything but 200."""
    started = time.perf_counter()
    response = session.post(server.url + path, data=body, headers=HEADERS, timeout=120)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{path}: {response.status_code} {response.text[:500]}")
    return elapsed


def settled_rss(pids: list[int], timeout: float = 10.0) -> list[float]:
    """The workers' RSS once it stops moving (an eviction's unload runs after the answer)."""
    last = [rss_mib(pid) for pid in pids]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = [rss_mib(pid) for pid in pids]
        if max(abs(a - b) for a, b in zip(now, last, strict=True)) < 0.25:
            return now
        last = now
    return last


def scrape(session: Any, server: Server, metric: str) -> dict[str, float]:
    """One labelled metric per model from ``/metrics`` (the worker of ``session``'s
    connection answers for the gauges; counters add up every worker)."""
    text = session.get(server.url + "/metrics", timeout=120).text
    pattern = re.compile(rf'^{metric}\{{model="([^"]+)"\}} (\S+)$', re.M)
    return {name: float(value) for name, value in pattern.findall(text)}


def memory_phase(server: Server, models: dict[str, Any], bodies: dict[str, list[bytes]]) -> dict:
    """Each model once, in order, on one connection: the workers' RSS after each answer."""
    import requests

    pids = worker_pids(server)
    session = requests.Session()
    before = settled_rss(pids)
    steps = []
    for name in models:
        post(session, server, f"/models/{name}/predict", bodies[name][0])
        steps.append(settled_rss(pids))
    served = int(np.argmax(np.array(steps[-1]) - np.array(before)))  # the client's worker
    footprints = scrape(session, server, "driftloop_model_memory_bytes")
    return {
        "pids": pids,
        "worker": served,
        "before": before[served],
        "after_each": [step[served] for step in steps],
        "other_worker": [step[1 - served] for step in steps] if len(pids) == 2 else [],
        "footprint_mib": {k: v / 2**20 for k, v in footprints.items()},
        "session": session,
    }


def cold_phase(
    server: Server, session: Any, bodies: dict[str, list[bytes]], cycles: int, pids: list[int]
) -> dict:
    """Cycle through every model ``cycles`` times on ``session``'s connection; each request's
    seconds by model, the loads the server counted, and a warm request's seconds."""
    loads_before = sum(scrape(session, server, "driftloop_model_loads_total").values())
    times: dict[str, list[float]] = {name: [] for name in bodies}
    for cycle in range(cycles):
        for name, body in bodies.items():
            times[name].append(post(session, server, f"/models/{name}/predict", body[cycle + 1]))
    loads = sum(scrape(session, server, "driftloop_model_loads_total").values()) - loads_before
    last = list(bodies)[-1]  # just loaded: resident
    warm = [
        post(session, server, f"/models/{last}/predict", bodies[last][i % 50]) for i in range(50)
    ]
    return {"times": times, "loads": loads, "warm": warm, "rss_after": settled_rss(pids)}


# --- warm load, alternating ----------------------------------------------------------------


def warm_rounds(
    servers: list[tuple[Server, str]], bodies: list[bytes], args: argparse.Namespace
) -> list[LoadResult]:
    """``--rounds`` rounds, each server once per round, the order alternating, after one
    unmeasured window per server: every worker has the model loaded before the first round
    (the many-model server's workers load it on their first request, and a worker's first
    model also imports MLflow's loading code: seconds, not a warm request)."""
    windows: dict[str, list[Any]] = {server.name: [] for server, _ in servers}
    for server, path in servers:
        load_window(server, path, bodies, HEADERS, args.clients, 0.0, args.warmup)
    results = []
    for round_ in range(args.rounds):
        for server, path in servers if round_ % 2 == 0 else servers[::-1]:
            if not args.smoke:
                wait_for_quiet(args.quiet_below, args.quiet_wait)
            window = load_window(
                server, path, bodies, HEADERS, args.clients, args.warmup, args.seconds
            )
            windows[server.name].append(window)
            result = summarize(server.name, path, str(round_ + 1), [window])
            log.info(
                "%s round %d: %.0f requests/s, p99 %.1f ms, %d errors",
                server.name,
                round_ + 1,
                result.rps,
                result.p99_ms,
                result.errors,
            )
            results.append(result)
    for server, path in servers:
        results.append(summarize(server.name, path, "all", windows[server.name]))
    return results


# --- DAG parse -----------------------------------------------------------------------------


def dag_parse(config: Path, rounds: int, smoke: bool) -> list[dict]:
    """Each DAG file with this config, ``rounds`` times, interleaved: CPU and wall seconds."""
    with tempfile.TemporaryDirectory(prefix="driftloop-many-models-dags-") as tmp:
        files = dag_files(Path(tmp), config, 1 if smoke else 3)
        if smoke:  # one model's file: the one that builds DAGs
            files = files[-1:]
        samples: dict[str, list[dict]] = {}
        for round_ in range(rounds):
            for path in files if round_ % 2 == 0 else files[::-1]:
                name = path.relative_to(path.parents[1]).as_posix()
                samples.setdefault(name, []).append(parse(path, config, Path(tmp) / "airflow"))
    rows = []
    for name, results in samples.items():
        cpu, wall = interval([r["cpu"] for r in results]), interval([r["wall"] for r in results])
        errors = sorted({e.strip().splitlines()[-1] for r in results for e in r["errors"]})
        rows.append(
            {
                "file": name,
                "dags": results[0]["dags"],
                "cpu": cpu,
                "wall": wall,
                "wall_max": max(r["wall"] for r in results),
                "errors": errors,
            }
        )
    return rows


# --- the tables ----------------------------------------------------------------------------


def ms(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values) * 1000, q))


def render(report: dict) -> str:
    m, cold, loads = report["memory"], report["cold"], report["warm"]
    lines = [
        f"{report['machine']['date_utc']}, {report['machine']['nproc']} cores "
        f"({report['machine']['cpu']}), load average {report['load_before']} at the start, "
        f"{report['load_after']} at the end; {report['models']} models, max_loaded_models "
        f"{report['max_loaded']}; gunicorn {report['workers']} workers x {report['threads']} "
        f"threads each server; " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()),
        "",
        f"### Warm one-record requests: {report['warm_model']}, {report['clients']} connections",
        "",
        "| server | round | connections | requests/s | p50 ms | p99 ms | max ms | errors "
        "| server CPU | other CPU |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in loads:
        lines.append(
            f"| {r.server} | {r.round} | {r.connections or '-'} | {r.rps:,.0f} | {r.p50_ms:.1f} "
            f"| {r.p99_ms:.1f} | {r.max_ms:.0f} | {r.errors} | {r.server_cpu:.2f} "
            f"| {r.other_cpu:.2f} |"
        )
    many, one = (
        next(r for r in loads if r.server == s and r.round == "all")
        for s in ("many-models", "one-model")
    )
    rps_ratio, p99_ratio = many.rps / one.rps, many.p99_ms / one.p99_ms
    lines += [
        "",
        "| target (all rounds) | many-model server | one-model server | ratio | met |",
        "| --- | ---: | ---: | ---: | --- |",
        f"| requests/s within 10% | {many.rps:,.0f} | {one.rps:,.0f} | {rps_ratio:.3f} "
        f"| {'yes' if rps_ratio >= 1 - TARGET_RATIO else '**no**'} |",
        f"| p99 within 10% | {many.p99_ms:.1f} ms | {one.p99_ms:.1f} ms | {p99_ratio:.3f} "
        f"| {'yes' if p99_ratio <= 1 + TARGET_RATIO else '**no**'} |",
        "",
        f"### Cold loads: {cold['requests']} requests naming an evicted model, one connection",
        "",
        f"The server counted {cold['loads']:.0f} loads for {cold['requests']} requests. "
        f"A warm request on the same connection: p50 {ms(cold['warm'], 50):.1f} ms, "
        f"p99 {ms(cold['warm'], 99):.1f} ms.",
        "",
        "| kind | requests | p50 ms | p99 ms | max ms |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    by_kind: dict[str, list[float]] = {}
    for name, times in cold["times"].items():
        by_kind.setdefault(name.split("_", 1)[1], []).extend(times)
    every = [t for times in by_kind.values() for t in times]
    for kind, times in [*sorted(by_kind.items()), ("**every model**", every)]:
        lines.append(
            f"| {kind} | {len(times)} | {ms(times, 50):.0f} | {ms(times, 99):.0f} "
            f"| {max(times) * 1000:.0f} |"
        )
    after, cap = m["after_each"], min(report["max_loaded"], len(m["after_each"]))
    per_model = (after[cap - 1] - after[0]) / (cap - 1) if cap > 1 else float("nan")
    lines += [
        "",
        "### Memory: the worker that served one connection, RSS MiB",
        "",
        "| state | RSS MiB |",
        "| --- | ---: |",
        f"| started, no model loaded | {m['before']:.0f} |",
        "| one-model server's workers after the warm rounds (its model loaded at start) | "
        + " and ".join(f"{x:.0f}" for x in report["one_model_rss"])
        + " |",
        f"| first model loaded (with the prediction log's client) | {after[0]:.0f} |",
        f"| {cap} models resident (the cap) | {after[cap - 1]:.0f} |",
        f"| per resident model, models 2 to {cap} | {per_model:.1f} |",
        f"| {len(after)} models asked, {cap} resident, {len(after) - cap} evicted "
        f"| {after[-1]:.0f} |",
        f"| growth per model loaded and evicted, models {cap + 1} to {len(after)} "
        f"| {(after[-1] - after[cap - 1]) / max(len(after) - cap, 1):.2f} |",
        f"| after {cold['requests']} more cold loads and evictions, {cap} resident "
        f"| {cold['rss_after'][m['worker']]:.0f} |",
        "",
        "The fleet's own estimate per resident model (RSS growth while it loaded), by kind, MiB: "
        + ", ".join(f"{k} {v:.1f}" for k, v in kind_means(m["footprint_mib"]).items()),
        "",
        f"### DAG parse with {report['models']} models declared",
        "",
        "| file | DAGs | CPU ms (95% CI) | wall ms (95% CI) | wall max ms |",
        "| --- | ---: | --- | --- | ---: |",
    ]
    for row in report["dags"]:
        (c, ch), (w, wh) = row["cpu"], row["wall"]
        lines.append(
            f"| `{row['file']}` | {row['dags']} | {c * 1000:.0f} ± {ch * 1000:.0f} "
            f"| {w * 1000:.0f} ± {wh * 1000:.0f} | {row['wall_max'] * 1000:.0f} |"
        )
        lines += [f"|  | import error: {error} | | | |" for error in row["errors"]]
    return "\n".join(lines)


def kind_means(footprints: dict[str, float]) -> dict[str, float]:
    by_kind: dict[str, list[float]] = {}
    for name, mib in footprints.items():
        by_kind.setdefault(name.split("_", 1)[1], []).append(mib)
    return {kind: statistics.fmean(v) for kind, v in sorted(by_kind.items())}


# --- main ----------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME)
    parser.add_argument("--reuse-home", action="store_true", help="keep a registered home")
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--max-loaded", type=int, default=10, help="serving.max_loaded_models")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers, each server")
    parser.add_argument(
        "--threads", type=int, default=16, help="gunicorn threads per worker (as shipped)"
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (warm)")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds a round")
    parser.add_argument("--rounds", type=int, default=4, help="warm rounds per server")
    parser.add_argument("--cold-cycles", type=int, default=3, help="cycles through every model")
    parser.add_argument("--dag-rounds", type=int, default=3)
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        help="wait up to this many seconds for a quiet machine before a round",
    )
    parser.add_argument("--quiet-below", type=float, default=0.3)
    parser.add_argument("--json", type=Path, help="also write every figure here")
    add_smoke(parser)
    args = parser.parse_args()
    if args.smoke:  # evictions still happen: 4 models of 4 kinds, 2 resident
        args.home, args.reuse_home, args.models, args.max_loaded = SMOKE_HOME, True, 4, 2
        args.workers, args.threads, args.clients = 1, 2, 2
        args.warmup, args.seconds, args.rounds = 0.5, 1.0, 1
        args.cold_cycles, args.dag_rounds = 1, 1
    return args


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    log.setLevel(logging.INFO)
    logging.getLogger("benchmarks.fleet_home").setLevel(logging.INFO)
    warnings.filterwarnings("ignore")
    home = args.home.resolve()
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    models = fleet_home(home, args.models, args.max_loaded, args.reuse_home)
    config = home / "driftloop.yaml"
    warm_model = next(iter(models))
    bodies = {name: records(settings, 50) for name, settings in models.items()}
    many = start_gunicorn("many-models", config, home, args.workers, args.threads, {})
    one = start_gunicorn(
        "one-model",
        config,
        home,
        args.workers,
        args.threads,
        {"DRIFTLOOP_MODEL__NAME": warm_model, "DRIFTLOOP_DATABASE__URL": single_database(home)},
    )
    with contextlib.ExitStack() as stack:
        stack.enter_context(running(one, "/ready"))  # stops both on the way out, whatever happens
        stack.enter_context(running(many, "/ready"))
        memory = memory_phase(many, models, bodies)
        log.info("memory: %s", {k: v for k, v in memory.items() if k != "session"})
        cold = cold_phase(many, memory.pop("session"), bodies, args.cold_cycles, memory["pids"])
        cold["requests"] = sum(len(t) for t in cold["times"].values())
        log.info("cold: %d loads for %d requests", cold["loads"], cold["requests"])
        warm_bodies = records(models[warm_model], 1000)
        warm = warm_rounds(
            [(many, f"/models/{warm_model}/predict"), (one, "/predict")], warm_bodies, args
        )
        one_rss = settled_rss(worker_pids(one))  # both workers booted and answering by now
    dags = dag_parse(config, args.dag_rounds, args.smoke)
    report = {
        "machine": machine(),
        "versions": versions("scikit-learn", "mlflow", "flask", "gunicorn", "apache-airflow"),
        "load_before": load_before,
        "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "models": args.models,
        "max_loaded": args.max_loaded,
        "workers": args.workers,
        "threads": args.threads,
        "clients": args.clients,
        "warm_model": warm_model,
        "kinds": [kind.name for _, kind in model_names(min(args.models, 7))],
        "memory": memory,
        "one_model_rss": one_rss,
        "cold": cold,
        "warm": warm,
        "dags": dags,
    }
    print(render(report))
    if args.json:
        serializable = {**report, "warm": [vars(r) for r in warm]}
        args.json.write_text(json.dumps(serializable, indent=2, default=str))
    failed = [r for r in warm if r.requests == 0 or r.errors]
    if failed or cold["loads"] < cold["requests"] or any(row["errors"] for row in dags):
        raise SystemExit(f"failed: loads {failed}, cold loads {cold['loads']}, see the tables")


if __name__ == "__main__":
    main()
