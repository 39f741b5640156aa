from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest

from driftloop.ab.traffic import PRODUCTION, STAGING, TrafficSplit, key_point, load_split
from driftloop.stages.traffic_split import save_split
from driftloop.storage import TrafficSplitRecord, session_scope

KEYS = [f"customer-{i}" for i in range(100_000)]


@pytest.mark.parametrize("weight", [0.0, 0.1, 0.25, 0.5, 0.9, 1.0])
def test_split_over_100k_keys_is_within_half_a_point_of_the_weight(weight):
    split = TrafficSplit(weight)
    share = sum(split.variant_for(key) == STAGING for key in KEYS) / len(KEYS)
    assert abs(share - weight) <= 0.005


def test_keyless_requests_are_split_at_random_by_the_weight():
    rng = random.Random(5)
    split = TrafficSplit(0.2)
    share = sum(split.variant_for(None, rng) == STAGING for _ in range(100_000)) / 100_000
    assert abs(share - 0.2) <= 0.005


def test_a_key_gets_the_same_variant_in_processes_with_different_hash_seeds():
    code = (
        "from driftloop.ab.traffic import TrafficSplit\n"
        "split = TrafficSplit(0.3)\n"
        "print(''.join(split.variant_for(f'customer-{i}')[0] for i in range(2000)))"
    )
    outputs = set()
    for seed in ("1", "2", "random"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(done.stdout.strip())
    assert len(outputs) == 1
    assert outputs.pop() == "".join(
        TrafficSplit(0.3).variant_for(f"customer-{i}")[0] for i in range(2000)
    )


def test_raising_staging_moves_keys_only_from_production_to_staging():
    before, after = TrafficSplit(0.1), TrafficSplit(0.2)
    moved = [(before.variant_for(k), after.variant_for(k)) for k in KEYS]
    assert (STAGING, PRODUCTION) not in moved
    newly = sum(pair == (PRODUCTION, STAGING) for pair in moved) / len(KEYS)
    assert abs(newly - 0.1) <= 0.005


def test_key_points_are_uniform_and_stable():
    assert key_point("customer-1") == key_point("customer-1")
    points = [key_point(k) for k in KEYS[:20_000]]
    assert min(points) >= 0.0 and max(points) < 1.0
    deciles = [sum(int(p * 10) == d for p in points) for d in range(10)]
    assert max(deciles) - min(deciles) < 400


@pytest.mark.parametrize("weight", [-0.1, 1.5])
def test_impossible_weights_are_refused(weight):
    with pytest.raises(ValueError, match="between 0 and 1"):
        TrafficSplit(weight)


def test_weights_live_in_the_database_for_every_worker(engine):
    assert load_split(engine, "wine-quality", default_weight=0.1) == TrafficSplit(0.1)
    save_split(engine, "wine-quality", TrafficSplit(0.25, shadow=True), who="ops@example")
    assert load_split(engine, "wine-quality", default_weight=0.1) == TrafficSplit(0.25, shadow=True)
    save_split(engine, "wine-quality", TrafficSplit(0.0), who="ops@example")
    assert load_split(engine, "wine-quality", default_weight=0.1) == TrafficSplit(0.0)
    with session_scope(engine) as session:
        record = session.get(TrafficSplitRecord, "wine-quality")
        assert record.updated_by == "ops@example"
