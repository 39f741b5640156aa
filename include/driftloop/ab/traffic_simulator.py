"""A traffic simulator for A/B tests: clients send rows no model trained on to a prediction
server's ``/predict`` and, when asked, their true labels to ``/feedback``, the way users of a
served model would (``driftloop simulate`` and the demo). It talks HTTP only, so it works
against any server. Not to be confused with :mod:`driftloop.ab.simulation`, which simulates
A/A tests statistically without a server."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests


@dataclass
class SimulationResult:
    """What the clients saw: answers per (variant, version), failures, feedback stored."""

    answered: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    feedback: int = 0
    correct: Counter = field(default_factory=Counter)

    def summary(self) -> list[str]:
        total = sum(self.answered.values()) or 1
        lines = []
        for (variant, version), count in sorted(self.answered.items()):
            accuracy = (
                f", {self.correct[(variant, version)] / count:.1%} correct" if self.feedback else ""
            )
            lines.append(
                f"{variant:10} version {version:>3}: "
                f"{count:5} requests ({count / total:.1%}){accuracy}"
            )
        if self.failed:
            lines.append(f"failed: {dict(self.failed)}")
        lines.append(f"feedback stored: {self.feedback}")
        return lines


def wait_ready(url: str, timeout: float = 120.0) -> None:
    """Wait for the server's ``/ready``; a clear error when it never comes."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            response = requests.get(f"{url}/ready", timeout=5)
            if response.status_code == 200:
                return
            last = response.text
        except requests.RequestException as exc:
            last = str(exc)
        time.sleep(0.5)
    raise RuntimeError(f"the server at {url} was not ready within {timeout:.0f} s: {last}")


def simulate(
    url: str,
    records: list[dict[str, Any]],
    labels: list[Any] | None,
    n_requests: int | None,
    clients: int = 50,
    seed: int = 0,
    api_key: str | None = None,
    rate: float | None = None,
    stop: threading.Event | None = None,
    result: SimulationResult | None = None,
) -> SimulationResult:
    """Send ``n_requests`` one-record requests (or until ``stop`` is set) from ``clients``
    sticky clients, at most ``rate`` per second; ``result`` is updated as they go."""
    rng = random.Random(seed)
    session = requests.Session()
    headers = {"X-API-Key": api_key} if api_key else {}
    result = result if result is not None else SimulationResult()
    sent = 0
    started = time.monotonic()
    while (n_requests is None or sent < n_requests) and not (stop and stop.is_set()):
        if rate:
            time.sleep(max(0.0, started + sent / rate - time.monotonic()))
        sent += 1
        index = rng.randrange(len(records))
        client = f"client-{rng.randrange(clients)}"
        try:
            response = session.post(
                f"{url}/predict",
                json={"record": records[index], "client_id": client},
                headers=headers,
                timeout=30,
            )
        except requests.RequestException as exc:
            result.failed[type(exc).__name__] += 1
            continue
        if response.status_code != 200:
            result.failed[response.status_code] += 1
            continue
        body = response.json()
        key = (body["variant"], body["version"])
        result.answered[key] += 1
        if labels is None:
            continue
        answer = body["predictions"][0]
        stored = session.post(
            f"{url}/feedback",
            json={"record_id": answer["record_id"], "value": labels[index]},
            headers=headers,
            timeout=30,
        )
        if stored.status_code == 201:
            result.feedback += 1
            result.correct[key] += int(str(answer["prediction"]) == str(labels[index]))
    return result
