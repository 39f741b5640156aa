"""The traffic split between the ``production`` and ``staging`` model versions: what share of
requests Staging answers and whether it also shadows Production. The prediction server routes
by it; the CLI shows and sets it.

A client key maps to a point in [0, 1) through a stable hash (BLAKE2b, not Python's salted
``hash``), so the same key lands on the same variant in every process and worker. A key goes to
Staging when its point falls below the Staging weight: raising the weight from 10% to 20% only
moves keys from Production to Staging, never back. Requests without a key are split at random.
The weights themselves live in the database (``traffic_splits``), so every worker and the CLI
see the same values.

Every save bumps the split's version and keeps it, with its time, in ``traffic_split_versions``.
Server replicas poll the split each on their own clock, so for up to ``serving.poll_seconds``
after a change some still route by the old one; each logged row records the version it was
routed under, and :func:`driftloop.ab.rows.routed_in_force` tells the A/B analysis which rows
to keep.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

import sqlalchemy as sa

from driftloop.registry import PRODUCTION, STAGING
from driftloop.storage import TrafficSplitRecord, session_scope

VARIANTS = (PRODUCTION, STAGING)
_SCALE = float(1 << 64)


def key_point(key: str) -> float:
    """Where a client key falls in [0, 1): the same in every process."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def client_hash(key: str) -> str:
    """What the prediction log keeps of a sticky client's key: a keyed digest that groups the
    client's requests (the A/B test's clusters) without storing the key itself."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=16, person=b"driftloop-client")
    return digest.hexdigest()


@dataclass(frozen=True)
class TrafficSplit:
    """How traffic is shared: the Staging weight and whether Staging also shadows Production."""

    staging_weight: float = 0.0
    shadow: bool = False
    # which save this is (0: never saved, the configured default); not part of the split's value
    version: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.staging_weight <= 1.0:
            raise ValueError(f"staging weight must be between 0 and 1, got {self.staging_weight}")

    def variant_for(self, key: str | None, rng: random.Random | None = None) -> str:
        """The variant that answers a request with ``key`` (random when there is none)."""
        point = key_point(key) if key else (rng or random).random()
        return STAGING if point < self.staging_weight else PRODUCTION


def load_split(
    engine: sa.Engine, model_name: str, default_weight: float, default_shadow: bool = False
) -> TrafficSplit:
    """The stored split, or the configured default when none was set."""
    with session_scope(engine) as session:
        record = session.get(TrafficSplitRecord, model_name)
        if record is None:
            return TrafficSplit(default_weight, default_shadow)
        return TrafficSplit(record.staging_weight, record.shadow, record.version)
