"""The load client: closed-loop one-record requests from asyncio/aiohttp clients.

Why: requests/s and percentiles only compare across benchmarks when every one of them
drives the servers the same way (bodies encoded before the clock starts, fresh connections
per round, latency from just before sending to the last byte).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from support.servers import Server, cpu_counters


@dataclass
class LoadResult:
    """One load run: concurrent one-record requests against one endpoint."""

    server: str
    endpoint: str
    round: str  # "1", "2", ... or "all" (every round's requests together)
    connections: str  # established connections per server process, e.g. "5+3"
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    client_cpu: float  # cores used by the load generator during the window
    server_cpu: float  # cores used by the server's process group during the window
    other_cpu: float  # cores used by everything else on the machine during the window
    first_error: str | None = None


def one_record_bodies(server: str, frame: pd.DataFrame) -> list[bytes]:
    """One JSON body per row, in each server's request format, encoded once."""
    if server == "driftloop":
        return [json.dumps({"record": r}).encode() for r in frame.to_dict("records")]
    columns = list(frame.columns)
    return [
        json.dumps({"dataframe_split": {"columns": columns, "data": [row]}}).encode()
        for row in frame.to_numpy().tolist()
    ]


async def _client_loop(
    session: Any,
    method: str,
    url: str,
    bodies: list[bytes] | None,
    headers: dict[str, str],
    until: float,
    offset: int,
    samples: list[tuple[float, float, int | str]],
) -> None:
    """Send requests back to back until ``until``; record (start, end, status or error)."""
    i = offset
    while (started := time.perf_counter()) < until:
        data = None if bodies is None else bodies[i % len(bodies)]
        i += 1
        try:
            async with session.request(method, url, data=data, headers=headers) as response:
                await response.read()
                outcome: int | str = response.status
        except Exception as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        samples.append((started, time.perf_counter(), outcome))


@dataclass
class Window:
    """What one measured window saw: samples completed in it, its length, CPU seconds used in
    it (load generator, server, whole machine) and the server's connections per process."""

    samples: list[tuple[float, float, int | str]]
    seconds: float
    cpu: list[float]
    connections: list[int]


def server_connections(port: int) -> list[int]:
    """Established connections to ``port`` per server process (gunicorn: per worker)."""
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return sorted(Counter(re.findall(r"pid=(\d+)", out)).values(), reverse=True)


async def _drive(
    method: str,
    url: str,
    bodies: list[bytes] | None,
    headers: dict[str, str],
    clients: int,
    warmup: float,
    seconds: float,
    pgid: int,
) -> Window:
    """Run ``clients`` loops on fresh connections; return what the window after warm-up saw."""
    import aiohttp

    samples: list[tuple[float, float, int | str]] = []
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        begin = time.perf_counter()
        window_start, window_end = begin + warmup, begin + warmup + seconds
        loops = [
            _client_loop(session, method, url, bodies, headers, window_end, n * 97, samples)
            for n in range(clients)
        ]
        tasks = [asyncio.ensure_future(loop) for loop in loops]
        await asyncio.sleep(max(window_start - time.perf_counter(), 0))
        before = cpu_counters(pgid)
        port = int(url.split(":")[2].split("/")[0])
        connections = await asyncio.get_running_loop().run_in_executor(
            None, server_connections, port
        )
        await asyncio.sleep(max(window_end - time.perf_counter(), 0))
        after = cpu_counters(pgid)
        await asyncio.gather(*tasks)
    used = [b - a for a, b in zip(before, after, strict=True)]
    inside = [s for s in samples if window_start <= s[1] <= window_end]
    return Window(inside, window_end - window_start, used, connections)


def predict_round(
    server: Server,
    bodies: list[bytes],
    headers: dict[str, str],
    clients: int,
    warmup: float,
    seconds: float,
) -> Window:
    """One round of closed-loop one-record ``/predict`` load on fresh connections."""
    drive = _drive(
        "POST", server.url + "/predict", bodies, headers, clients, warmup, seconds,
        server.process.pid,
    )  # fmt: skip
    return asyncio.run(drive)


def summarize(server: str, endpoint: str, label: str, windows: list[Window]) -> LoadResult:
    """Figures over one or more windows (percentiles over every request of them)."""
    samples = [s for w in windows for s in w.samples]
    seconds = sum(w.seconds for w in windows)
    client, server_cpu, machine = (sum(w.cpu[i] for w in windows) for i in range(3))
    failed = [s for s in samples if s[2] != 200]
    latencies = np.array([(e - b) * 1000 for b, e, _ in samples]) if samples else None
    return LoadResult(
        server=server,
        endpoint=endpoint,
        round=label,
        connections="+".join(str(n) for n in windows[0].connections) if len(windows) == 1 else "",
        requests=len(samples),
        errors=len(failed),
        seconds=seconds,
        rps=len(samples) / seconds,
        p50_ms=float(np.percentile(latencies, 50)) if latencies is not None else float("nan"),
        p99_ms=float(np.percentile(latencies, 99)) if latencies is not None else float("nan"),
        max_ms=float(latencies.max()) if latencies is not None else float("nan"),
        client_cpu=client / seconds,
        server_cpu=server_cpu / seconds,
        other_cpu=max(machine - client - server_cpu, 0.0) / seconds,
        first_error=str(failed[0][2]) if failed else None,
    )


def load_window(
    server: Server,
    endpoint: str,
    bodies: list[bytes] | None,
    headers: dict[str, str],
    clients: int,
    warmup: float,
    seconds: float,
) -> Window:
    """One window of closed-loop load on fresh connections (GET without ``bodies``), for
    benchmarks that alternate servers round by round and :func:`summarize` the windows."""
    method = "GET" if bodies is None else "POST"
    drive = _drive(
        method, server.url + endpoint, bodies, headers, clients, warmup, seconds,
        server.process.pid,
    )  # fmt: skip
    return asyncio.run(drive)


def run_load(
    server: Server,
    endpoint: str,
    bodies: list[bytes] | None,
    headers: dict[str, str],
    clients: int,
    warmup: float,
    seconds: float,
    rounds: int = 1,
    pause: Callable[[], Any] | None = None,
) -> list[LoadResult]:
    """Closed-loop load: ``clients`` requests in flight at all times, in ``rounds`` rounds,
    each on fresh connections after ``warmup`` seconds; one result per round, and one over
    all rounds when there are several.

    Requests that complete inside a window count; latency is client-side, from just before
    the request is sent to the last byte of the answer.
    """
    windows = []
    for _ in range(rounds):
        if pause is not None:
            pause()
        windows.append(load_window(server, endpoint, bodies, headers, clients, warmup, seconds))
    results = [summarize(server.name, endpoint, str(i + 1), [w]) for i, w in enumerate(windows)]
    if rounds > 1:
        results.append(summarize(server.name, endpoint, "all", windows))
    return results


# --- batches -------------------------------------------------------------------------------
