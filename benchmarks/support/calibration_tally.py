"""A tally of drift verdicts over a cell's batches, for driftloop and Evidently alike.

Why: both tools' verdicts are counted the same way (batches called drift, features flagged,
insufficient data apart) so the tables compare like with like, and the driftloop checkpoint
stores tallies as plain JSON that ``--resume`` reads back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Tally:
    """What one tool concluded over a cell's batches."""

    batches: int = 0
    drift: int = 0
    insufficient: int = 0
    flagged_share_sum: float = 0.0
    tested_sum: int = 0
    seconds: float = 0.0
    per_feature: dict[str, int] = field(default_factory=dict)

    def merge(self, other: Tally) -> None:
        """Add a tally of the same cell from another task (another reference)."""
        self.batches += other.batches
        self.drift += other.drift
        self.insufficient += other.insufficient
        self.flagged_share_sum += other.flagged_share_sum
        self.tested_sum += other.tested_sum
        self.seconds += other.seconds
        for name, count in other.per_feature.items():
            self.per_feature[name] = self.per_feature.get(name, 0) + count

    def add(self, status: str, flagged: list[str], tested: int, seconds: float) -> None:
        """Count one batch's verdict; insufficient data is left out of both shares."""
        self.batches += 1
        self.seconds += seconds
        if status == "insufficient_data":
            self.insufficient += 1
            return
        self.drift += status == "drift"
        self.tested_sum += tested
        self.flagged_share_sum += len(flagged) / tested if tested else 0.0
        for name in flagged:
            self.per_feature[name] = self.per_feature.get(name, 0) + 1

    @property
    def decided(self) -> int:
        return self.batches - self.insufficient

    def drift_share(self) -> float:
        return self.drift / self.decided if self.decided else math.nan

    def flagged_share(self) -> float:
        return self.flagged_share_sum / self.decided if self.decided else math.nan

    def feature_share(self, name: str) -> float:
        return self.per_feature.get(name, 0) / self.decided if self.decided else math.nan
