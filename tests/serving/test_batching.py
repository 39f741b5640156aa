"""The micro-batcher: requests routed to a model just before a swap closes it still get their
answers, and one bad request never fails the others batched with it."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from driftloop.stack.processes import wait_until
from serving.batching import MicroBatcher, Rows, _together


def _doubling(calls: list[int]):
    def predict(frame: pd.DataFrame):
        calls.append(len(frame))
        if (frame["x"] < 0).any():
            raise ValueError("negative x")
        return list(frame["x"] * 2), None

    return predict


def test_a_request_after_close_is_answered_not_left_waiting():
    calls: list[int] = []
    batcher = MicroBatcher(_doubling(calls), max_rows=64, wait_seconds=0.001, name="t")
    assert batcher.submit(pd.DataFrame({"x": [1.0]}))[0] == [2.0]
    batcher.close()
    with ThreadPoolExecutor(1) as pool:  # before the fix this waited forever
        late = pool.submit(batcher.submit, pd.DataFrame({"x": [3.0]}))
        assert late.result(timeout=30)[0] == [6.0]


def test_one_failing_request_fails_alone():
    calls: list[int] = []
    frames = [pd.DataFrame({"x": [float(i)]}) for i in (1, -1, 2, 3)]
    doubling = _doubling(calls)

    def predict(frame: pd.DataFrame):
        # the first call waits until every other request is queued, so the next call takes
        # them together however slowly a loaded machine starts the threads
        if not calls:
            wait_until(
                lambda: batcher._queue.qsize() + len(frame) >= len(frames) or None,
                30,
                "the other requests to queue",
                interval=0.01,
            )
        return doubling(frame)

    batcher = MicroBatcher(predict, max_rows=64, wait_seconds=0.2, name="t")
    start = threading.Barrier(len(frames))

    def send(frame):
        start.wait()
        return batcher.submit(frame)

    with ThreadPoolExecutor(len(frames)) as pool:
        futures = [pool.submit(send, f) for f in frames]
        outcomes = [f.exception(timeout=30) or f.result()[0] for f in futures]
    batcher.close()
    assert outcomes[0] == [2.0] and outcomes[2] == [4.0] and outcomes[3] == [6.0]
    assert isinstance(outcomes[1], ValueError)
    assert max(calls) > 1  # they were batched together first


def test_requests_queued_before_close_are_still_answered():
    calls: list[int] = []
    batcher = MicroBatcher(_doubling(calls), max_rows=64, wait_seconds=0.3, name="t")
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(batcher.submit, pd.DataFrame({"x": [float(i)]})) for i in range(3)]
        batcher.close()
        assert sorted(f.result(timeout=30)[0][0] for f in futures) == [0.0, 2.0, 4.0]


@pytest.mark.parametrize("rows", [64, 100])
def test_large_frames_skip_the_queue(rows):
    calls: list[int] = []
    batcher = MicroBatcher(_doubling(calls), max_rows=64, wait_seconds=0.001, name="t")
    assert len(batcher.submit(pd.DataFrame({"x": [1.0] * rows}))[0]) == rows
    batcher.close()
    assert calls == [rows]


def test_arrays_and_frames_are_stacked_into_one_frame_in_order():
    """A request's all-numeric records come as an array with their columns (no frame per
    request); a batch of them, or of them and frames, is one frame with the rows in order."""
    columns = ("x", "y")
    parts = [
        Rows(np.array([[1.0, 2.0]]), columns),
        Rows(np.array([[3.0, 4.0], [5.0, 6.0]]), columns),
    ]
    stacked = _together(parts)
    assert list(stacked.columns) == ["x", "y"]
    assert stacked.to_numpy().tolist() == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    mixed = _together([parts[0], pd.DataFrame({"x": [7.0], "y": [8.0]}), parts[1]])
    assert mixed["x"].tolist() == [1.0, 7.0, 3.0, 5.0] and mixed.index.tolist() == [0, 1, 2, 3]
    alone = _together([parts[1]])
    assert isinstance(alone, pd.DataFrame) and alone["y"].tolist() == [4.0, 6.0]


def test_arrays_submitted_together_each_get_their_own_rows():
    calls: list[int] = []
    batcher = MicroBatcher(_doubling(calls), max_rows=64, wait_seconds=0.05, name="t")
    values = [Rows(np.array([[float(i)]]), ("x",)) for i in range(6)]
    with ThreadPoolExecutor(len(values)) as pool:
        answers = list(pool.map(batcher.submit, values))
    batcher.close()
    assert [a[0] for a in answers] == [[2.0 * i] for i in range(6)]
    assert sum(calls) == 6
