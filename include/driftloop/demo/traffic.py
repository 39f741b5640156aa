"""The demo's traffic: requests and feedback on rows no model trained on, sent in a thread while
the loop runs (see :mod:`driftloop.demo.loop`)."""

from __future__ import annotations

import threading
from typing import Any

from driftloop.config import Settings


class TrafficThread:
    """The simulator in a thread until stopped: one-record requests from sticky clients, each
    followed by its true label as feedback. ``url`` is the server's, or one model's
    (``<server>/models/<name>``) on a server of several."""

    def __init__(self, url: str, rows: list[dict[str, Any]], settings: Settings, rate: float):
        from driftloop.ab.traffic_simulator import SimulationResult

        target = settings.data.target
        self.records = [{k: v for k, v in r.items() if k != target} for r in rows]
        self.labels = [r[target] for r in rows]
        self.url, self.rate = url, rate
        self.result = SimulationResult()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)
        self.error: Exception | None = None

    def __enter__(self) -> TrafficThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        from driftloop.ab.traffic_simulator import simulate

        try:
            simulate(
                self.url,
                self.records,
                self.labels,
                None,
                clients=200,
                seed=1,
                rate=self.rate,
                stop=self._stop,
                result=self.result,
            )
        except Exception as exc:  # reported in the summary, never a hang
            self.error = exc

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def summary(self) -> dict[str, Any]:
        return {
            "answered": {f"{v} v{n}": c for (v, n), c in sorted(self.result.answered.items())},
            "correct": {f"{v} v{n}": c for (v, n), c in sorted(self.result.correct.items())},
            "failed": {str(k): c for k, c in self.result.failed.items()},
            "feedback": self.result.feedback,
            "error": None if self.error is None else str(self.error),
        }
