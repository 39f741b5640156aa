"""Named, seeded ways to turn a pool of rows into a stream of batches.

A scenario is an entry in :data:`SCENARIOS`; adding one is one function and one registration.
Every scenario uses only rows no reference split holds, so a model never sees them in training.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class StreamContext:
    """What a scenario works with."""

    pool: pd.DataFrame
    n_batches: int
    batch_size: int
    rng: np.random.Generator
    features: Sequence[str]
    target: str
    start_batch: int
    second_source: pd.DataFrame | None = None
    shift_features: Sequence[str] = ()
    strength: float = 1.0


@dataclass(frozen=True)
class ScenarioBatch:
    """One batch a scenario made, with a note on what was done to it."""

    frame: pd.DataFrame
    note: str = ""


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    make: Callable[[StreamContext], list[ScenarioBatch]]
    needs_second_source: bool = False
    params: Sequence[str] = field(default_factory=tuple)


def _slices(frame: pd.DataFrame, context: StreamContext) -> list[pd.DataFrame]:
    order = context.rng.permutation(len(frame))
    return [
        frame.iloc[order[i * context.batch_size : (i + 1) * context.batch_size]]
        for i in range(context.n_batches)
    ]


def no_drift(context: StreamContext) -> list[ScenarioBatch]:
    """Batches drawn at random from the pool: what a stable world looks like."""
    return [ScenarioBatch(batch) for batch in _slices(context.pool, context)]


def gradual_covariate_shift(context: StreamContext) -> list[ScenarioBatch]:
    """Rows of a second source mixed in step by step, from none to ``strength`` of each batch.

    For wine: red wine rows into the white wine stream, the share rising linearly from
    ``start_batch`` on.
    """
    source = context.second_source
    if source is None:
        raise ValueError("the gradual scenario needs data.drift_source in the config")
    source = source[list(context.pool.columns)]
    pool_order = context.rng.permutation(len(context.pool))
    source_order = context.rng.permutation(len(source))
    ramp = max(context.n_batches - context.start_batch, 1)
    batches, used_pool, used_source = [], 0, 0
    for index in range(context.n_batches):
        step = index - context.start_batch + 1
        share = 0.0 if step <= 0 else min(context.strength, context.strength * step / ramp)
        n_source = min(round(share * context.batch_size), len(source))
        n_pool = context.batch_size - n_source
        take_pool = pool_order[used_pool : used_pool + n_pool]
        take_source = source_order[np.arange(used_source, used_source + n_source) % len(source)]
        used_pool, used_source = used_pool + n_pool, used_source + n_source
        mixed = pd.concat([context.pool.iloc[take_pool], source.iloc[take_source]])
        mixed = mixed.iloc[context.rng.permutation(len(mixed))]
        batches.append(ScenarioBatch(mixed, f"{n_source / context.batch_size:.0%} second source"))
    return batches


def sudden_shift(context: StreamContext) -> list[ScenarioBatch]:
    """From ``start_batch`` on, the chosen features move by ``strength`` reference std each."""
    features = list(context.shift_features) or list(context.features[:3])
    unknown = sorted(set(features) - set(context.features))
    if unknown:
        raise ValueError(f"cannot shift {unknown}: not features of this data set")
    scale = context.pool[features].std()
    batches = []
    for index, batch in enumerate(_slices(context.pool, context)):
        if index < context.start_batch:
            batches.append(ScenarioBatch(batch))
            continue
        shifted = batch.copy()
        shifted[features] = shifted[features] + context.strength * scale
        names = ", ".join(features)
        batches.append(ScenarioBatch(shifted, f"{names} +{context.strength:g} std"))
    return batches


def concept_shift(context: StreamContext) -> list[ScenarioBatch]:
    """A sudden shift whose labels change too: the old model is clearly wrong afterwards.

    From ``start_batch`` on, the chosen features move as in :func:`sudden_shift` and the target
    moves with them: numeric labels by one step up (integer classes) or one std (regression),
    text labels to the next label in sorted order.
    """
    shifted = sudden_shift(context)
    target = context.pool[context.target]
    batches = []
    for index, batch in enumerate(shifted):
        if index < context.start_batch:
            batches.append(batch)
            continue
        frame = batch.frame.copy()
        if pd.api.types.is_integer_dtype(target):
            frame[context.target] = np.minimum(frame[context.target] + 1, target.max())
        elif pd.api.types.is_numeric_dtype(target):
            frame[context.target] = frame[context.target] + target.std()
        else:
            labels = sorted(target.dropna().unique())
            following = dict(zip(labels, labels[1:] + labels[:1], strict=True))
            frame[context.target] = frame[context.target].map(following)
        batches.append(ScenarioBatch(frame, f"{batch.note}; labels moved"))
    return batches


def label_shift(context: StreamContext) -> list[ScenarioBatch]:
    """From ``start_batch`` on, rows with high target values become more frequent.

    Rows are drawn with weights ``exp(strength * z)`` where ``z`` is the standardized
    target (or, for text labels, the standardized rank of the label's rarity).
    """
    target = context.pool[context.target]
    if pd.api.types.is_numeric_dtype(target):
        score = (target - target.mean()) / (target.std() or 1.0)
    else:
        rarity = target.map(target.value_counts(ascending=True).rank(method="dense"))
        score = (rarity - rarity.mean()) / (rarity.std() or 1.0)
    weights = np.exp(context.strength * score.to_numpy(dtype=float))
    order = context.rng.permutation(len(context.pool))
    n_clean = context.start_batch * context.batch_size
    clean, rest = order[:n_clean], order[n_clean:]
    # Weighted sampling without replacement (Efraimidis-Spirakis keys).
    keys = context.rng.random(len(rest)) ** (1.0 / weights[rest])
    rest = rest[np.argsort(-keys)]
    order = np.concatenate([clean, rest])
    batches = []
    for index in range(context.n_batches):
        rows = context.pool.iloc[
            order[index * context.batch_size : (index + 1) * context.batch_size]
        ]
        note = (
            "" if index < context.start_batch else f"labels tilted, strength {context.strength:g}"
        )
        batches.append(ScenarioBatch(rows, note))
    return batches


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario("none", "no drift: random rows of the data set", no_drift),
        Scenario(
            "gradual",
            "gradual covariate shift: rows of data.drift_source mixed in step by step",
            gradual_covariate_shift,
            needs_second_source=True,
            params=("start_batch", "strength (final share, 0..1)"),
        ),
        Scenario(
            "sudden",
            "sudden shift of chosen features by a number of standard deviations",
            sudden_shift,
            params=("start_batch", "strength (std units)", "shift_features"),
        ),
        Scenario(
            "concept",
            "sudden shift of chosen features with the labels moving too (concept drift)",
            concept_shift,
            params=("start_batch", "strength (std units)", "shift_features"),
        ),
        Scenario(
            "label-shift",
            "label shift: high target values become more frequent",
            label_shift,
            params=("start_batch", "strength"),
        ),
    )
}

DEFAULT_STRENGTH = {"none": 0.0, "gradual": 0.8, "sudden": 1.5, "concept": 1.5, "label-shift": 1.5}
