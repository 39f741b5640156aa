"""Before/after benchmark (issue 14, "Nothing slower"): two checkouts measured side by side.

Why: a refactor must not make serving, the drift check or the DAG files slower. Run one after
the other, two benchmarks of the same code differ by more than 10% on a shared 2-core machine,
so this script measures both checkouts in ONE run and alternates them (B A A B B A ...), so that
other work on the machine falls on both alike. The 1-minute load average is printed with every
round and kept in the results.

What, for a BEFORE and an AFTER checkout (each with its own .venv, installed by `make install`):

1. serving: one home, bootstrapped once by this checkout's benchmarks/serving_bench.py
   (PyCaret ExtraTrees registered as version 1, Production); each checkout's own gunicorn
   (`gunicorn -c serving/gunicorn.conf.py 'serving.app:create_app()'` from its .venv, cwd its
   checkout, DRIFTLOOP_* pointing at the shared home) on its own port; rounds of one-record
   /predict from concurrent clients (serving_bench's own load generator: closed loop, fresh
   connections each round), alternating between the two servers. Requests/s and p99 pooled
   over each side's rounds.
2. drift: benchmarks/drift_bench.py's driftloop check child (a stored 100,000-point profile
   plus a 1M-row current batch -> verdict), from each checkout's .venv and script, on the same
   generated Parquet files; each side builds its own profile once, then check children
   alternate. Median check seconds per side.
3. dags: each DAG file parsed in a fresh interpreter (`python -c`: Airflow's SDK imported
   first, then only the exec of the DAG module via importlib is timed), interleaved rounds;
   min and median per side. Files only one side has are reported alone. The environment is
   passed on as it is (with PYTHONDONTWRITEBYTECODE set, the checkout's own modules are
   compiled again by every parse); `--dag-cached-rounds N` adds N rounds with bytecode cached
   outside the checkouts (PYTHONPYCACHEPREFIX), as a deployed image has it.

Targets (issue 14): requests/s >= 95% of before, p99 <= 110% of before, drift check and each DAG
file's parse within 10% of before.

Run from the AFTER checkout (it re-executes itself under the AFTER .venv if needed):

    .venv/bin/python benchmarks/before_after.py --before ../before --after .

About 10 minutes on 2 cores (bootstrap under 1, serving about 3, drift about 1, DAGs about 5).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from support.common import ROOT, add_smoke, machine
from support.drift_data import ensure_data
from support.homes import feature_frame, prepare_home, smoke_home
from support.load import one_record_bodies, predict_round, summarize
from support.servers import Server, free_port, wait_ready

log = logging.getLogger("before_after")
SIDES = ("before", "after")
COMMON_DAGS = ("drift_monitor", "retrain", "ab_evaluate")
TARGETS = {"rps": 0.95, "p99": 1.10, "drift": 1.10, "dag": 1.10}

# Timed in a fresh interpreter: Airflow's SDK is imported first (its cost is not the file's),
# then only the exec of the DAG module. Prints the seconds and the heavy modules it pulled in.
PARSE_CODE = """\
import importlib.util, sys, time
import airflow.sdk
spec = importlib.util.spec_from_file_location("dag_under_test", sys.argv[1])
module = importlib.util.module_from_spec(spec)
start = time.perf_counter()
spec.loader.exec_module(module)
print(time.perf_counter() - start)
print([m for m in ('pandas', 'mlflow', 'pycaret', 'sklearn', 'scipy') if m in sys.modules])
"""

# Runs one checkout's drift_bench child on shared data: the module's DATA_DIR is pointed at the
# shared directory and each side keeps its own profile file beside the data. The child imports
# that checkout's script (it is the code under test, in a process of its own); this script
# itself imports only benchmarks/support.
DRIFT_CHILD_CODE = """\
import sys
from pathlib import Path
root, data_dir, tag = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
sys.path.insert(0, str(root / "benchmarks"))
import drift_bench
drift_bench.DATA_DIR = data_dir
drift_bench.profile_path = lambda rows, exact_max: drift_bench.data_path(
    rows, "reference").with_name(f"profile-{tag}-exact{exact_max}.npz")
sys.exit(drift_bench.main(sys.argv[4:]))
"""


# --- helpers ---------------------------------------------------------------------------------


def load1() -> float:
    return os.getloadavg()[0]


def ratio(after: float, before: float) -> float:
    return after / before if before else float("nan")


def order(rounds: int) -> list[str]:
    """B A, A B, B A, ...: each side first in half the rounds."""
    sequence: list[str] = []
    for i in range(rounds):
        sequence += list(SIDES) if i % 2 == 0 else list(reversed(SIDES))
    return sequence


def commit(root: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or "unknown"


def python_of(root: Path) -> Path:
    return root / ".venv" / "bin" / "python"


def base_env(root: Path) -> dict[str, str]:
    """This environment without DRIFTLOOP_*/AIRFLOW* overrides, the checkout's .venv first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIFTLOOP_", "AIRFLOW"))}
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    env["PATH"] = f"{root / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


# --- 1. serving ------------------------------------------------------------------------------


def serving(args: argparse.Namespace, trees: dict[str, Path]) -> dict[str, Any]:
    started = time.perf_counter()
    if args.smoke:
        settings = smoke_home()
        args.home = settings.storage.home
    else:
        settings = prepare_home(args.home, reuse=args.reuse_home)
    homes = {side: args.home for side in SIDES}
    if args.separate_homes:
        # when the two checkouts' database schemas differ, each serves a home it bootstrapped
        # itself (the same model: PyCaret ExtraTrees with a fixed session id)
        homes["before"] = args.home.parent / "home-before"
        bootstrap_with(trees["before"], homes["before"], args.reuse_home)
    bootstrap_s = time.perf_counter() - started
    frame = feature_frame(settings, 1000)
    bodies = one_record_bodies("driftloop", frame)
    headers = {"Content-Type": "application/json", "X-Variant": "production"}
    servers: dict[str, Any] = {}
    windows: dict[str, list[Any]] = {side: [] for side in SIDES}
    rounds: list[dict[str, Any]] = []
    answers: dict[str, Any] = {}
    try:
        for side, root in trees.items():
            port = free_port()
            env = base_env(root)
            env.update(
                DRIFTLOOP_CONFIG=str(root / "driftloop.yaml"),
                DRIFTLOOP_STORAGE__HOME=str(homes[side]),
                DRIFTLOOP_BIND=f"127.0.0.1:{port}",
                DRIFTLOOP_WORKERS=str(args.workers),
                DRIFTLOOP_THREADS=str(args.threads),
                PROMETHEUS_MULTIPROC_DIR=str(homes[side] / f"prometheus-{side}"),
            )
            (homes[side] / f"prometheus-{side}").mkdir(parents=True, exist_ok=True)
            command = [
                str(root / ".venv" / "bin" / "gunicorn"),
                "-c",
                str(root / "serving" / "gunicorn.conf.py"),
                "serving.app:create_app()",
            ]
            log_path = homes[side] / f"driftloop-{side}.log"
            with log_path.open("wb") as out:
                process = subprocess.Popen(
                    command, env=env, cwd=root, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
            url = f"http://127.0.0.1:{port}"
            servers[side] = Server(f"driftloop-{side}", process, url, log_path)
        for side, server in servers.items():
            wait_ready(server, "/ready")
            answers[side] = first_answer(server.url, bodies[0], headers)
        log.info("both servers ready; same answer to one record: %s", same(answers))
        for n, side in enumerate(order(args.rounds)):
            server = servers[side]
            load = load1()
            window = predict_round(server, bodies, headers, args.clients, args.warmup, args.seconds)
            windows[side].append(window)
            r = summarize(side, "/predict", str(n), [window])
            rounds.append(
                {"round": n, "side": side, "rps": r.rps, "p50_ms": r.p50_ms, "p99_ms": r.p99_ms,
                 "errors": r.errors, "requests": r.requests, "load1": load,
                 "connections": r.connections, "server_cpu_ms": cpu_ms(r)}
            )  # fmt: skip
            print(
                f"serving {n:2} {side:6} {r.rps:6.0f} req/s  p50 {r.p50_ms:5.1f} ms  "
                f"p99 {r.p99_ms:6.1f} ms  errors {r.errors}  conns {r.connections}  "
                f"server CPU {cpu_ms(r):.2f} ms/request  "
                f"load1 {load:.2f}",
                flush=True,
            )
    finally:
        for server in servers.values():
            server.stop()
    pooled = {}
    for side in SIDES:
        r = summarize(side, "/predict", "all", windows[side])
        per_round = [x["rps"] for x in rounds if x["side"] == side]
        pooled[side] = {
            "rps": r.rps, "p50_ms": r.p50_ms, "p99_ms": r.p99_ms, "max_ms": r.max_ms,
            "errors": r.errors, "requests": r.requests, "first_error": r.first_error,
            "median_round_rps": statistics.median(per_round),
            "server_cpu_ms": cpu_ms(r),
            "load1": [x["load1"] for x in rounds if x["side"] == side],
        }  # fmt: skip
    b, a = pooled["before"], pooled["after"]
    return {
        "homes": {side: str(home) for side, home in homes.items()},
        "bootstrap_s": bootstrap_s,
        "same_answer": same(answers),
        "answers": answers,
        "config": {
            k: getattr(args, k)
            for k in ("rounds", "seconds", "warmup", "clients", "workers", "threads")
        },
        "rounds": rounds,
        "pooled": pooled,
        "rps_ratio": ratio(a["rps"], b["rps"]),
        "p99_ratio": ratio(a["p99_ms"], b["p99_ms"]),
        "rps_met": ratio(a["rps"], b["rps"]) >= TARGETS["rps"],
        "p99_met": ratio(a["p99_ms"], b["p99_ms"]) <= TARGETS["p99"],
    }


def bootstrap_with(root: Path, home: Path, reuse: bool) -> None:
    """``root``'s own ``prepare_home``, run by ``root``'s interpreter (in benchmarks/support
    since issue 29; in serving_bench.py in older checkouts)."""
    code = (
        "import sys; from pathlib import Path; sys.path.insert(0, 'benchmarks')\n"
        "try:\n    from support.homes import prepare_home\n"
        "except ImportError:\n    from serving_bench import prepare_home\n"
        f"prepare_home(Path({str(home)!r}), {reuse!r})"
    )
    subprocess.run([str(python_of(root)), "-c", code], cwd=root, env=base_env(root), check=True)


def cpu_ms(result: Any) -> float:
    """CPU milliseconds the server's processes spent per answered request."""
    return result.server_cpu / result.rps * 1000 if result.rps else float("nan")


def first_answer(url: str, body: bytes, headers: dict[str, str]) -> Any:
    import requests

    response = requests.post(url + "/predict", data=body, headers=headers, timeout=30)
    try:
        return {"status": response.status_code, "body": response.json()}
    except ValueError:
        return {"status": response.status_code, "body": response.text[:500]}


def same(answers: dict[str, Any]) -> bool:
    """Both servers predict the same for one record (ignoring ids and timings they may add)."""

    def core(answer: Any) -> Any:
        body = answer.get("body") if isinstance(answer, dict) else None
        if not isinstance(body, dict):
            return body
        kept = {k: v for k, v in body.items() if k != "request_id"}
        kept["predictions"] = [
            {k: v for k, v in p.items() if k != "record_id"} for p in body.get("predictions", [])
        ]
        return kept

    values = [core(answers.get(side)) for side in SIDES]
    return values[0] == values[1] and all(a and a.get("status") == 200 for a in answers.values())


# --- 2. drift --------------------------------------------------------------------------------


def drift(args: argparse.Namespace, trees: dict[str, Path]) -> dict[str, Any]:
    generated_s = ensure_data(args.drift_rows, args.data_dir)
    log.info("drift data (%s rows) under %s ready in %.1f s", args.drift_rows, args.data_dir,
             generated_s)  # fmt: skip
    runs: list[dict[str, Any]] = []
    builds: dict[str, Any] = {}
    for side in SIDES:  # each side's own profile of the same reference, built once
        builds[side] = drift_child(args, trees[side], side, "profile", 1)
        print(f"drift profile {side:6} build {builds[side]['seconds'][0]:.3f} s  "
              f"load1 {builds[side]['load1']:.2f}", flush=True)  # fmt: skip
    for n, side in enumerate(order(args.drift_runs)):
        result = drift_child(args, trees[side], side, "driftloop", args.drift_repeat)
        result.update(run=n, side=side)
        runs.append(result)
        print(
            f"drift   {n:2} {side:6} check median {statistics.median(result['seconds']):.3f} s "
            f"(runs {', '.join(f'{s:.3f}' for s in result['seconds'])})  CPU "
            f"{statistics.median(result['cpu_seconds']):.3f} s  child wall {result['wall_s']:.1f} s"
            f"  {result['status']}  load1 {result['load1']:.2f}",
            flush=True,
        )
    per_side = {}
    for side in SIDES:
        mine = [r for r in runs if r["side"] == side]
        seconds = [s for r in mine for s in r["seconds"]]
        per_side[side] = {
            "median_s": statistics.median(seconds),
            "min_s": min(seconds),
            "median_of_child_medians_s": statistics.median(
                statistics.median(r["seconds"]) for r in mine
            ),
            "median_cpu_s": statistics.median(s for r in mine for s in r["cpu_seconds"]),
            "child_wall_s": [r["wall_s"] for r in mine],
            "peak_mib": max(r["check_peak_kib"] for r in mine) / 1024,
            "build_s": builds[side]["seconds"][0],
            "verdict": (mine[0]["status"], mine[0]["drifted"]),
            "load1": [r["load1"] for r in mine],
        }
    b, a = per_side["before"], per_side["after"]
    return {
        "rows": args.drift_rows,
        "data_dir": str(args.data_dir),
        "runs": [{k: v for k, v in r.items() if k != "values"} for r in runs],
        "per_side": per_side,
        "same_verdict": a["verdict"] == b["verdict"],
        "same_values": runs[0]["values"]
        == next(r for r in runs if r["side"] != runs[0]["side"])["values"],
        "ratio": ratio(a["median_s"], b["median_s"]),
        "cpu_ratio": ratio(a["median_cpu_s"], b["median_cpu_s"]),
        "met": ratio(a["median_s"], b["median_s"]) <= TARGETS["drift"],
    }


def drift_child(
    args: argparse.Namespace, root: Path, side: str, child: str, repeat: int
) -> dict[str, Any]:
    out = args.data_dir / "runs" / f"before-after-{side}-{child}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    command = [str(python_of(root)), "-c", DRIFT_CHILD_CODE, str(root), str(args.data_dir), side]
    command += ["--child", child, "--rows", str(args.drift_rows), "--repeat", str(repeat)]
    command += ["--out", str(out), "--exact-max", "100000"]
    env = base_env(root)
    env.update(DO_NOT_TRACK="1", PYTHONHASHSEED="0")
    load = load1()
    started = time.perf_counter()
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0 or not out.is_file():
        raise RuntimeError(f"{side} drift {child} child failed:\n{done.stderr[-3000:]}")
    return {**json.loads(out.read_text()), "wall_s": wall, "load1": load}


# --- 3. DAG parse ----------------------------------------------------------------------------


def dags(args: argparse.Namespace, trees: dict[str, Path], cached: bool) -> dict[str, Any]:
    """Parse times; ``cached``: bytecode kept in a per-side cache outside the checkouts (as a
    deployed image has it) after one untimed warm-up parse, else the environment as it is."""
    chosen = args.dags.split(",") if args.dags else None
    files = {
        side: {
            p.stem: p
            for p in sorted((root / "dags").glob("*.py"))
            if chosen is None or p.stem in chosen
        }
        for side, root in trees.items()
    }
    common = [name for name in files["after"] if name in files["before"]]
    only = {side: [n for n in files[side] if n not in common] for side in SIDES}
    scratch = Path(tempfile.mkdtemp(prefix="before-after-dags-"))
    envs = {}
    for side, root in trees.items():
        env = base_env(root)
        home = scratch / f"airflow-{side}"
        home.mkdir()
        env.update(
            AIRFLOW_HOME=str(home),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_FOLDER=str(root / "dags"),
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        )
        if cached:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(scratch / f"pycache-{side}")
        envs[side] = env
    rounds = args.dag_rounds if not cached else args.dag_cached_rounds
    samples: dict[str, dict[str, list[float]]] = {side: {} for side in SIDES}
    loads: list[float] = []
    if cached:  # warm-up: fill each side's bytecode cache
        for side in SIDES:
            for name in files[side]:
                parse(trees[side], files[side][name], envs[side])
    label = "cached" if cached else "as-is"
    for n in range(rounds):
        load = load1()
        loads.append(load)
        sides = list(SIDES) if n % 2 == 0 else list(reversed(SIDES))
        line = []
        for name in common + [x for side in SIDES for x in only[side]]:
            for side in sides:
                if name not in files[side]:
                    continue
                seconds, heavy = parse(trees[side], files[side][name], envs[side])
                samples[side].setdefault(name, []).append(seconds)
                if heavy != "[]":
                    log.warning("%s %s imported heavy modules: %s", side, name, heavy)
                line.append(f"{name[:8]}/{side[0]} {seconds * 1000:5.1f}")
        print(f"dags {label} {n:2} " + "  ".join(line) + f"  ms  load1 {load:.2f}", flush=True)
    table = {}
    for name in common + [x for side in SIDES for x in only[side]]:
        row = {}
        for side in SIDES:
            if name in samples[side]:
                values = samples[side][name]
                row[side] = {"min_s": min(values), "median_s": statistics.median(values),
                             "samples": values}  # fmt: skip
        if len(row) == 2:
            row["ratio"] = ratio(row["after"]["median_s"], row["before"]["median_s"])
            row["min_ratio"] = ratio(row["after"]["min_s"], row["before"]["min_s"])
            row["met"] = row["ratio"] <= TARGETS["dag"]
        table[name] = row
    return {"mode": label, "rounds": rounds, "files": table, "load1": loads}


def parse(root: Path, path: Path, env: dict[str, str]) -> tuple[float, str]:
    done = subprocess.run(
        [str(python_of(root)), "-c", PARSE_CODE, str(path)],
        cwd=root, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"parsing {path} failed:\n{done.stderr[-3000:]}")
    seconds, heavy = done.stdout.strip().splitlines()[-2:]
    return float(seconds), heavy


# --- report ----------------------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    lines = []
    if "serving" in results:
        s = results["serving"]
        b, a = s["pooled"]["before"], s["pooled"]["after"]
        lines += [
            "| one-record /predict | before | after | after/before | target | met |",
            "| --- | ---: | ---: | ---: | --- | --- |",
            f"| requests/s (pooled) | {b['rps']:.0f} | {a['rps']:.0f} | {s['rps_ratio']:.3f} "
            f"| >= 0.95 | {'yes' if s['rps_met'] else 'NO'} |",
            f"| p99 ms (pooled) | {b['p99_ms']:.1f} | {a['p99_ms']:.1f} | {s['p99_ratio']:.3f} "
            f"| <= 1.10 | {'yes' if s['p99_met'] else 'NO'} |",
            f"| p50 ms (pooled) | {b['p50_ms']:.1f} | {a['p50_ms']:.1f} "
            f"| {ratio(a['p50_ms'], b['p50_ms']):.3f} | | |",
            f"| median round req/s | {b['median_round_rps']:.0f} | {a['median_round_rps']:.0f} "
            f"| {ratio(a['median_round_rps'], b['median_round_rps']):.3f} | | |",
            f"| server CPU ms per request | {b['server_cpu_ms']:.2f} | {a['server_cpu_ms']:.2f} "
            f"| {ratio(a['server_cpu_ms'], b['server_cpu_ms']):.3f} | | |",
            f"| errors / requests | {b['errors']} / {b['requests']} | {a['errors']} / "
            f"{a['requests']} | | | |",
            f"| 1-min load average, per round | {', '.join(f'{x:.2f}' for x in b['load1'])} "
            f"| {', '.join(f'{x:.2f}' for x in a['load1'])} | | | |",
            "",
        ]
    if "drift" in results:
        d = results["drift"]
        b, a = d["per_side"]["before"], d["per_side"]["after"]
        lines += [
            f"| drift check, {d['rows']:,} rows | before | after | after/before | target | met |",
            "| --- | ---: | ---: | ---: | --- | --- |",
            f"| check s, median of all timed checks | {b['median_s']:.3f} | {a['median_s']:.3f} "
            f"| {d['ratio']:.3f} | <= 1.10 | {'yes' if d['met'] else 'NO'} |",
            f"| check s, min | {b['min_s']:.3f} | {a['min_s']:.3f} "
            f"| {ratio(a['min_s'], b['min_s']):.3f} | | |",
            f"| check CPU s, median | {b['median_cpu_s']:.3f} | {a['median_cpu_s']:.3f} "
            f"| {d['cpu_ratio']:.3f} | | |",
            f"| profile build s (once) | {b['build_s']:.3f} | {a['build_s']:.3f} "
            f"| {ratio(a['build_s'], b['build_s']):.3f} | | |",
            f"| peak RSS MiB | {b['peak_mib']:.0f} | {a['peak_mib']:.0f} | | | |",
            f"| 1-min load average, per child | {', '.join(f'{x:.2f}' for x in b['load1'])} "
            f"| {', '.join(f'{x:.2f}' for x in a['load1'])} | | | |",
            "",
        ]
    for key in ("dags", "dags_cached"):
        if key not in results:
            continue
        g = results[key]
        lines += [
            f"| DAG file parse ms ({g['mode']}, {g['rounds']} rounds) | before min | before median "
            "| after min | after median | after/before (medians) | met (<= 1.10) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for name, row in g["files"].items():
            cells = [f"`dags/{name}.py`"]
            for side in SIDES:
                if side in row:
                    cells += [f"{row[side]['min_s'] * 1000:.1f}",
                              f"{row[side]['median_s'] * 1000:.1f}"]  # fmt: skip
                else:
                    cells += ["-", "-"]
            if "ratio" in row:
                cells += [f"{row['ratio']:.3f}", "yes" if row["met"] else "NO"]
            else:
                cells += ["(new)", "-"]
            lines.append("| " + " | ".join(cells) + " |")
        loads = g["load1"]
        lines += [f"\n1-min load average over the rounds: {min(loads):.2f} to {max(loads):.2f}", ""]
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="checkout with a .venv (required)")
    parser.add_argument("--after", type=Path, help="checkout with a .venv (required)")
    parser.add_argument("--parts", default="serving,drift,dags", help="comma-separated")
    parser.add_argument(
        "--home",
        type=Path,
        help="shared serving home (default: AFTER/var/bench-before-after/home)",
    )
    parser.add_argument(
        "--separate-homes",
        action="store_true",
        help="BEFORE bootstraps and serves its own home (for checkouts with different schemas)",
    )
    parser.add_argument("--reuse-home", action="store_true", help="keep a bootstrapped home")
    parser.add_argument("--rounds", type=int, default=6, help="serving rounds per side")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per round")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker")
    parser.add_argument(
        "--data-dir", type=Path, help="shared drift data (default: AFTER/var/bench-data)"
    )
    parser.add_argument("--drift-rows", type=int, default=1_000_000)
    parser.add_argument("--drift-runs", type=int, default=3, help="check children per side")
    parser.add_argument("--drift-repeat", type=int, default=3, help="timed checks per child")
    parser.add_argument("--dag-rounds", type=int, default=15)
    parser.add_argument("--dags", help="only these DAG files (stems, comma-separated)")
    parser.add_argument("--dag-cached-rounds", type=int, default=0,
                        help="rounds with a warm bytecode cache (0: skip)")  # fmt: skip
    parser.add_argument(
        "--json", type=Path, help="default: AFTER/var/bench-before-after/results.json"
    )
    add_smoke(parser, "this checkout against itself, one short round of each part, one DAG file")
    args = parser.parse_args(argv)
    if args.smoke:
        args.before, args.after = args.before or ROOT, args.after or ROOT
        args.rounds, args.seconds, args.warmup, args.clients = 1, 1.0, 0.5, 2
        args.workers, args.threads, args.drift_rows, args.drift_runs = 1, 2, 20_000, 1
        args.drift_repeat, args.dag_rounds, args.dag_cached_rounds = 1, 1, 0
        args.dags = args.dags or "drift_monitor"
    if args.before is None or args.after is None:
        parser.error("--before and --after are required (or --smoke)")
    args.before, args.after = args.before.resolve(), args.after.resolve()
    out = args.after / "var" / "bench-before-after"
    args.home = (args.home or out / "home").resolve()
    args.data_dir = (args.data_dir or args.after / "var" / "bench-data").resolve()
    name = "results-smoke.json" if args.smoke else "results.json"
    args.json = (args.json or out / name).resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    after_python = python_of(args.after)
    if Path(sys.prefix).resolve() != (args.after / ".venv").resolve():  # AFTER's serving_bench
        os.execv(after_python, [str(after_python), str(Path(__file__).resolve()), *sys.argv[1:]])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    trees = {"before": args.before, "after": args.after}
    for side, root in trees.items():
        if not python_of(root).exists():
            raise SystemExit(f"{side}: {python_of(root)} missing (run make install there)")
    parts = args.parts.split(",")
    results: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "commits": {side: commit(root) for side, root in trees.items()},
        "trees": {side: str(root) for side, root in trees.items()},
        "load1_start": load1(),
    }
    print(json.dumps({k: results[k] for k in ("machine", "commits", "load1_start")}), flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        args.json.write_text(json.dumps(results, indent=1, default=str))

    if "serving" in parts:
        results["serving"] = serving(args, trees)
        save()
    if "drift" in parts:
        results["drift"] = drift(args, trees)
        save()
    if "dags" in parts:
        results["dags"] = dags(args, trees, cached=False)
        save()
        if args.dag_cached_rounds:
            results["dags_cached"] = dags(args, trees, cached=True)
    results["load1_end"] = load1()
    save()
    print("\n" + markdown(results))
    print(f"\nresults: {args.json}")
    if args.smoke and "serving" in results and not results["serving"]["same_answer"]:
        return 1  # a server failed: its errors are in the table above
    return 0


if __name__ == "__main__":
    sys.exit(main())
