from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from driftloop.data import read_table, row_keys
from driftloop.ingestion.stream import (
    StreamError,
    build_reference,
    load_dataset,
    parse_batch_time,
    replay,
    split_reference,
)


def _keys(frame: pd.DataFrame) -> set[int]:
    return set(row_keys(frame).tolist())


def test_reference_split_is_seeded_and_keeps_duplicates_on_one_side(settings):
    reference, pool = split_reference(settings)
    again, _ = split_reference(settings)
    assert reference.equals(again)
    total = len(load_dataset(settings))
    assert len(reference) + len(pool) == total == 4898
    assert abs(len(reference) / total - settings.stream.reference_share) < 0.01
    assert not _keys(reference) & _keys(pool)


def test_build_reference_writes_the_split(settings):
    path, rows = build_reference(settings)
    written = read_table(path, settings.data)
    assert len(written) == rows
    assert list(written.columns) == [*settings.feature_columns, "quality"]


def test_replay_never_uses_reference_rows_and_stamps_times(settings):
    reference, _ = split_reference(settings)
    written = replay(settings, "none")
    assert len(written) == 3429 // settings.stream.batch_size
    times = [parse_batch_time(batch.path.name) for batch in written]
    assert times == sorted(times) and times[0] == settings.stream.start_time
    assert times[1] - times[0] == pd.Timedelta(minutes=settings.stream.interval_minutes)
    seen: set[int] = set()
    for batch in written:
        frame = read_table(batch.path, settings.data)
        assert len(frame) == settings.stream.batch_size
        assert not _keys(frame) & _keys(reference)
        seen |= _keys(frame)
    assert len(seen) > 0.8 * len(written) * settings.stream.batch_size


def test_gradual_scenario_mixes_in_red_step_by_step(settings):
    red = _keys(
        read_table(settings.data.drift_source, settings.data)[
            [*settings.feature_columns, "quality"]
        ]
    )
    written = replay(settings, "gradual", n_batches=10, start_batch=2, strength=0.8)
    shares = [
        np.mean([k in red for k in row_keys(read_table(b.path, settings.data))]) for b in written
    ]
    assert shares[0] == shares[1] == 0.0
    assert all(later >= earlier for earlier, later in itertools.pairwise(shares))
    assert shares[-1] == pytest.approx(0.8, abs=0.02)


def test_sudden_scenario_shifts_only_chosen_features(settings):
    written = replay(
        settings, "sudden", n_batches=6, start_batch=3, strength=2.0, shift_features=("alcohol",)
    )
    frames = [read_table(b.path, settings.data) for b in written]
    before = np.mean([f["alcohol"].mean() for f in frames[:3]])
    after = np.mean([f["alcohol"].mean() for f in frames[3:]])
    assert after - before > 1.5 * frames[0]["alcohol"].std()
    assert abs(frames[4]["pH"].mean() - frames[0]["pH"].mean()) < 0.05


def test_label_shift_raises_the_target(settings):
    written = replay(settings, "label-shift", n_batches=8, start_batch=4, strength=2.0)
    means = [read_table(b.path, settings.data)["quality"].mean() for b in written]
    assert np.mean(means[4:]) > np.mean(means[:4]) + 0.3


def test_replay_is_reproducible(settings):
    first = [b.path.read_bytes() for b in replay(settings, "gradual", n_batches=3)]
    second = [b.path.read_bytes() for b in replay(settings, "gradual", n_batches=3)]
    assert first == second


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scenario": "tsunami"}, "unknown scenario"),
        ({"scenario": "none", "n_batches": 0}, "between 1 and"),
        ({"scenario": "none", "n_batches": 10_000}, "between 1 and"),
        ({"scenario": "sudden", "shift_features": ("colour",)}, "not features"),
    ],
)
def test_replay_rejects_impossible_requests(settings, kwargs, message):
    with pytest.raises(StreamError, match=message):
        replay(settings, **kwargs)
