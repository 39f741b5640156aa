"""What every settings section shares, and the names a config is validated against."""

from __future__ import annotations

from pydantic import (
    BaseModel,
    ConfigDict,
    model_validator,
)

STATISTIC_NAMES = ("mean_shift", "wasserstein", "jensen_shannon")
"""The drift statistics ``driftloop.drift.statistics`` registers (a test keeps the two equal),
listed here so that validating a config imports nothing of the drift code."""
KNOWN_STATISTICS = set(STATISTIC_NAMES)
"""What a config may name: those, and any statistic registered later (``register`` adds it)."""
TASK_METRICS = {"classification": ("accuracy",), "regression": ("mae", "rmse")}
"""The ab.metric values each task allows: the metrics of ``driftloop.task``'s task kinds (a
test keeps the two equal), listed here for the same reason."""


class Section(BaseModel):
    """A config section: unknown keys are errors, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Bounds(Section):
    """Hard limits a value must respect to be usable at all (not merely usual)."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Bounds:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self
