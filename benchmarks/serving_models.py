"""Does the model the default AutoML picks still serve as fast as ExtraTrees? (issue 16, item 2)

Why: a stronger default must not slow serving down. The issue asks that the model driftloop's
default training picks on white wine (seed 0) answer one-record requests with a p99 of at most
50 ms and at least 90% of the requests/s of PyCaret's ExtraTrees, measured in the same run.

What: two homes, each bootstrapped by ``driftloop.stages.retrain.bootstrap`` on white wine
with ``training.seed = 0`` and registered as version 1 (Production): one with driftloop.yaml's
default model list (whatever cross-validation picks; printed), one with ExtraTrees only
(``training.models = [et]``, the model the serving benchmark has always served). Both served by
driftloop's gunicorn (``serving/gunicorn.conf.py``, 2 workers x 8 threads) at the same time on
their own ports; rounds of one-record ``/predict`` from 8 closed-loop clients (serving_bench's
load generator, fresh connections every round) alternate between them (E D D E E D ...), so
other work on the machine falls on both alike. Requests/s and p99 pooled per side.

    cd /tmp && /work/main/.venv/bin/python /work/main/benchmarks/serving_models.py

About 6 minutes on 2 cores (two bootstraps, then 12 rounds of 13 s).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

from support.common import ROOT, add_smoke
from support.homes import (
    EXTRA_TREES,
    describe_estimator,
    feature_frame,
    load_pipeline,
    prepare_home,
    smoke_home,
    smoke_home_copy,
)
from support.load import one_record_bodies, predict_round, summarize
from support.servers import start_driftloop, wait_ready

log = logging.getLogger("serving_models")
SIDES = ("et", "default")
TARGETS = {"rps": 0.90, "p99_ms": 50.0}


def bootstrap_home(home: Path, seed: int, models: list[str] | None, reuse: bool) -> Any:
    """A home with version 1 in Production, trained by ``models`` (None: driftloop.yaml's)."""
    training: dict[str, Any] = {"seed": seed}
    if models is not None:
        training |= {**EXTRA_TREES, "models": models}
    return prepare_home(home, reuse, training)


def order(rounds: int) -> list[str]:
    """E D, D E, E D, ...: each side goes first in every other pair."""
    pairs = [SIDES if n % 2 == 0 else SIDES[::-1] for n in range(rounds)]
    return [side for pair in pairs for side in pair]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=ROOT / "var" / "bench-serving-models")
    parser.add_argument("--reuse-home", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=6, help="rounds per side")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--json", type=Path)
    add_smoke(parser, "one short round per side, 1 worker; the smoke home's model on both sides")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    if args.smoke:
        args.rounds, args.seconds, args.warmup, args.clients = 1, 1.0, 0.5, 2
        homes = {"et": smoke_home_copy("et"), "default": smoke_home()}  # one model, twice
    else:
        homes = {
            "et": bootstrap_home(args.home / "et", args.seed, ["et"], args.reuse_home),
            "default": bootstrap_home(args.home / "default", args.seed, None, args.reuse_home),
        }
    models = {side: describe_estimator(s, load_pipeline(s)) for side, s in homes.items()}
    for side, described in models.items():
        print(f"{side}: {json.dumps(described, default=str)}")
    frame = feature_frame(homes["et"], 1000)
    bodies = one_record_bodies("driftloop", frame)
    headers = {"Content-Type": "application/json", "X-Variant": "production"}
    servers = {}
    windows: dict[str, list[Any]] = {side: [] for side in SIDES}
    rounds = []
    try:
        for side, settings in homes.items():
            (settings.storage.home / "prometheus").mkdir(exist_ok=True)
            servers[side] = start_driftloop(settings, *((1, 2) if args.smoke else (2, 8)), {})
        for server in servers.values():
            wait_ready(server, "/ready")
        for n, side in enumerate(order(args.rounds)):
            server, load = servers[side], os.getloadavg()[0]
            window = predict_round(server, bodies, headers, args.clients, args.warmup, args.seconds)
            windows[side].append(window)
            r = summarize(side, "/predict", str(n), [window])
            rounds.append({"side": side, "rps": r.rps, "p99_ms": r.p99_ms, "load1": load})
            print(
                f"round {n:2} {side:7} {r.rps:6.0f} req/s  p50 {r.p50_ms:5.1f} ms  p99 "
                f"{r.p99_ms:6.1f} ms  errors {r.errors}  conns {r.connections}  load1 {load:.2f}",
                flush=True,
            )
    finally:
        for server in servers.values():
            server.stop()
    pooled = {side: summarize(side, "/predict", "all", windows[side]) for side in SIDES}
    et, default = pooled["et"], pooled["default"]
    ratio = default.rps / et.rps if et.rps else float("nan")
    print()
    print(
        "| one-record /predict | ExtraTrees | default pick | default / ExtraTrees | target | met |"
    )
    print("| --- | ---: | ---: | ---: | --- | --- |")
    print(
        f"| requests/s (pooled) | {et.rps:.0f} | {default.rps:.0f} | {ratio:.3f} "
        f"| >= {TARGETS['rps']} | {'yes' if ratio >= TARGETS['rps'] else 'NO'} |"
    )
    print(
        f"| p99 ms (pooled) | {et.p99_ms:.1f} | {default.p99_ms:.1f} | "
        f"{default.p99_ms / et.p99_ms:.3f} | default <= {TARGETS['p99_ms']:.0f} ms "
        f"| {'yes' if default.p99_ms <= TARGETS['p99_ms'] else 'NO'} |"
    )
    print(f"| p50 ms (pooled) | {et.p50_ms:.1f} | {default.p50_ms:.1f} | | | |")
    print(
        f"| errors / requests | {et.errors} / {et.requests} "
        f"| {default.errors} / {default.requests} | | | |"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"models": models, "rounds": rounds, "rps_ratio": ratio}, indent=1, default=str
            )
        )
    if args.smoke and (et.errors or default.errors or not et.requests or not default.requests):
        raise SystemExit("smoke: a server failed requests or answered none")


if __name__ == "__main__":
    main()
