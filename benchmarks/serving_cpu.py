"""CPU per one-record /predict request (issue 30): two checkouts side by side, alternating.

Why: on a shared 2-core machine requests/s moves with whatever else runs, but the CPU seconds a
server spends per request barely do. 1,000 requests/s on 2 cores leaves 2 ms of CPU per
request for the server, its prediction-log writers and the load client together; this script
measures each of the three per request, and requests/s and latency beside them.

What: one home with the demo's random forest (PyCaret ``rf``) registered as version 1,
Production; each checkout's own gunicorn (``serving/gunicorn.conf.py``, shipped defaults: 2
workers x its threads; its own .venv, cwd the checkout) on its own port, both up for the whole
run; rounds alternate (B A, A B, ...). A round sends a fixed number of one-record requests over
``--connections`` keep-alive connections (fresh each round), each connection sending its next
request as soon as the last is answered (closed loop). The client is a small asyncio HTTP/1.1
client (bodies encoded before the clock starts), so its own CPU per request is small and
measured too. Server CPU is every process of the server's process group (gunicorn's master
and workers, and the workers' prediction-log writers), read from /proc before and after.

    .venv/bin/python benchmarks/serving_cpu.py --before /work/main --after .

``--before`` left out: the AFTER checkout alone. ``--smoke``: the shared smoke home, one small
round per side.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from support.common import ROOT, add_smoke, machine
from support.homes import feature_frame, prepare_home, smoke_home
from support.load import one_record_bodies, server_connections
from support.servers import Server, free_port, group_cpu_seconds, machine_busy_seconds, wait_ready

log = logging.getLogger("serving_cpu")
RANDOM_FOREST = {"models": ["rf"], "folds": 3, "budget_minutes": 0.5}  # the demo's rf


def start_server(root: Path, home: Path, tag: str, workers: int, threads: int | None) -> Server:
    """``root``'s gunicorn serving ``home``, in a process group of its own (``threads``: None
    for the checkout's shipped default)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIFTLOOP_", "AIRFLOW"))}
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    env["PATH"] = f"{root / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    metrics = home / f"prometheus-{tag}"
    metrics.mkdir(parents=True, exist_ok=True)
    env.update(
        DRIFTLOOP_CONFIG=str(root / "driftloop.yaml"),
        DRIFTLOOP_STORAGE__HOME=str(home),
        DRIFTLOOP_BIND=f"127.0.0.1:{port}",
        DRIFTLOOP_WORKERS=str(workers),
        PROMETHEUS_MULTIPROC_DIR=str(metrics),
    )
    if threads is not None:
        env["DRIFTLOOP_THREADS"] = str(threads)
    command = [
        str(root / ".venv" / "bin" / "gunicorn"),
        "-c",
        str(root / "serving" / "gunicorn.conf.py"),
        "serving.app:create_app()",
    ]
    log_path = home / f"driftloop-{tag}.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, cwd=root, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    return Server(f"driftloop-{tag}", process, f"http://127.0.0.1:{port}", log_path)


# --- the client ------------------------------------------------------------------------------


def requests_of(bodies: list[bytes], port: int, headers: dict[str, str]) -> list[bytes]:
    """Each body as a whole HTTP/1.1 request, encoded once."""
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return [
        (
            f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
        for body in bodies
    ]


async def _connection(
    port: int, requests: list[bytes], count: int, offset: int, out: list[tuple[float, int]]
) -> None:
    """Send ``count`` requests back to back on one keep-alive connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for i in range(count):
            started = time.perf_counter()
            writer.write(requests[(offset + i) % len(requests)])
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            out.append((time.perf_counter() - started, status))
    finally:
        writer.close()


async def _round(
    port: int, requests: list[bytes], total: int, connections: int, pgid: int
) -> dict[str, Any]:
    samples: list[tuple[float, int]] = []
    share = [total // connections + (n < total % connections) for n in range(connections)]
    before = (time.process_time(), group_cpu_seconds(pgid), machine_busy_seconds())
    wall = time.perf_counter()
    tasks = [
        asyncio.ensure_future(_connection(port, requests, share[n], n * 97, samples))
        for n in range(connections)
    ]
    await asyncio.sleep(0.5)
    spread = await asyncio.get_running_loop().run_in_executor(None, server_connections, port)
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - wall
    after = (time.process_time(), group_cpu_seconds(pgid), machine_busy_seconds())
    client, server, busy = (b - a for a, b in zip(before, after, strict=True))
    latencies = np.array([s[0] for s in samples]) * 1000
    errors = sum(1 for s in samples if s[1] != 200)
    done = len(samples)
    return {
        "requests": done,
        "errors": errors,
        "seconds": wall,
        "rps": done / wall,
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "server_cpu_ms": server / done * 1000,
        "client_cpu_ms": client / done * 1000,
        "other_cores": max(busy - server - client, 0.0) / wall,
        "connections": "+".join(map(str, spread)),
        "load1": os.getloadavg()[0],
    }


def measure(server: Server, requests: list[bytes], total: int, connections: int) -> dict:
    port = int(server.url.rsplit(":", 1)[1])
    return asyncio.run(_round(port, requests, total, connections, server.process.pid))


# --- the run ---------------------------------------------------------------------------------


def pooled(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per side: medians over its rounds (CPU per request, requests/s, p99)."""
    keys = ("server_cpu_ms", "client_cpu_ms", "rps", "p99_ms", "p50_ms", "other_cores")
    return {k: statistics.median(r[k] for r in rounds) for k in keys} | {
        "rounds": len(rounds),
        "errors": sum(r["errors"] for r in rounds),
        "requests": sum(r["requests"] for r in rounds),
    }


def order(sides: list[str], rounds: int) -> list[str]:
    """B A, A B, B A, ...: each side first in half the rounds."""
    sequence: list[str] = []
    for i in range(rounds):
        sequence += sides if i % 2 == 0 else list(reversed(sides))
    return sequence


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.smoke:
        settings = smoke_home()
    else:
        settings = prepare_home(args.home, reuse=True, training=RANDOM_FOREST)
    home = settings.storage.home
    trees = {"after": args.after.resolve()}
    if args.before is not None:
        trees = {"before": args.before.resolve(), **trees}
    bodies = one_record_bodies("driftloop", feature_frame(settings, 1000))
    headers = {"Content-Type": "application/json"}
    servers = {}
    results: dict[str, list[dict[str, Any]]] = {side: [] for side in trees}
    try:
        for side, root in trees.items():
            threads = args.threads_before if side == "before" else args.threads
            servers[side] = start_server(root, home, side, args.workers, threads)
        for server in servers.values():
            wait_ready(server, "/ready")
        for server in servers.values():  # warm-up: each worker predicts a few batches
            port = int(server.url.rsplit(":", 1)[1])
            measure(server, requests_of(bodies, port, headers), 200, args.connections)
        for n, side in enumerate(order(list(trees), args.rounds)):
            server = servers[side]
            port = int(server.url.rsplit(":", 1)[1])
            r = measure(server, requests_of(bodies, port, headers), args.requests, args.connections)
            results[side].append(r)
            print(
                f"round {n:2} {side:6} {r['rps']:6.0f} req/s  p50 {r['p50_ms']:5.1f} ms  "
                f"p99 {r['p99_ms']:6.1f} ms  server CPU {r['server_cpu_ms']:.3f} ms/req  "
                f"client CPU {r['client_cpu_ms']:.3f} ms/req  other {r['other_cores']:.2f} cores  "
                f"errors {r['errors']}  conns {r['connections']}  load1 {r['load1']:.2f}",
                flush=True,
            )
    finally:
        for server in servers.values():
            server.stop()
    summary = {side: pooled(rounds) for side, rounds in results.items()}
    for side, s in summary.items():
        print(
            f"{side:6} median: {s['rps']:6.0f} req/s  p99 {s['p99_ms']:5.1f} ms  "
            f"server CPU {s['server_cpu_ms']:.3f} ms/req  client CPU {s['client_cpu_ms']:.3f} "
            f"ms/req  errors {s['errors']} of {s['requests']}",
            flush=True,
        )
    return {"machine": machine(), "config": vars(args) | {"home": str(home)}, "rounds": results,
            "summary": summary}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, help="the BEFORE checkout (with its .venv)")
    parser.add_argument("--after", type=Path, default=ROOT, help="the AFTER checkout")
    parser.add_argument("--home", type=Path, default=ROOT / "var" / "bench-serving-cpu")
    parser.add_argument("--requests", type=int, default=20_000, help="per round")
    parser.add_argument("--rounds", type=int, default=3, help="per side")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, help="default: each checkout's own")
    parser.add_argument("--threads-before", type=int, help="BEFORE's only (default: --threads)")
    parser.add_argument("--json", type=Path, help="write the results here")
    add_smoke(parser)
    args = parser.parse_args(argv)
    if args.threads_before is None:
        args.threads_before = args.threads
    if args.smoke:
        args.requests, args.rounds = 500, 1
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    results = run(args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    errors = sum(s["errors"] for s in results["summary"].values())
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
