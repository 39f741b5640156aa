"""Closed-loop one-record load on a running server, for the tests that change what serves
while requests are in flight (promotion, rollback, a weight change)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import requests


@contextmanager
def one_record_load(
    url: str,
    records: list[dict[str, Any]],
    clients: int,
    headers: Callable[[int, int], dict[str, str]],
    timeout: float,
) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    """``clients`` threads post one record after another to ``url``/predict, each on its own
    connection, until the block ends; every answer is kept, in order, as (status, body).
    ``headers(n, i)`` gives client ``n``'s headers for its ``i``-th request."""
    answers: list[tuple[int, dict[str, Any]]] = []
    stop = threading.Event()

    def client(n: int) -> None:
        session = requests.Session()
        i = 0
        while not stop.is_set():
            response = session.post(
                f"{url}/predict",
                json={"record": records[(n * 31 + i) % len(records)]},
                headers=headers(n, i),
                timeout=timeout,
            )
            answers.append((response.status_code, response.json()))
            i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    try:
        yield answers
    finally:
        stop.set()
        for thread in threads:
            thread.join(max(30.0, 2 * timeout))


def wait_for_answers(answers: list, count: int, what: str, timeout: float = 120) -> None:
    """Until ``count`` answers have come back (a step of a test waits for answers, not time)."""
    from driftloop.stack.processes import wait_until

    wait_until(lambda: len(answers) >= count or None, timeout, what, interval=0.05)


def predicted_200(url: str) -> float:
    """``/predict`` requests a server answered 200, from its own ``/metrics``."""
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(f"{url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "driftloop_requests_total"
        and {k: v for k, v in sample.labels.items() if k != "model"}
        == {"endpoint": "predict", "status": "200"}
    )
