"""The A/B test's section, with the approval of its decisions by a person, and where driftloop
reaches Airflow's REST API to answer a waiting approval: the settings of promotion."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, SecretStr, field_validator, model_validator

from driftloop.config.base import Section

REPLACED_AB_KEYS = {"decay_window", "decay_limit"}  # ab keys that monitoring.* replaced


class ABSettings(Section):
    """The A/B test between Staging and Production, and Production's health (``driftloop.ab``)."""

    metric: Literal["accuracy", "mae", "rmse"] | None = Field(
        default=None,
        description="Decision metric; empty: accuracy (classification) or mae (regression).",
    )
    alpha: float = Field(
        default=0.05, gt=0.0, lt=0.5, description="Significance level of the sequential test."
    )
    min_samples: PositiveInt = Field(
        default=200, description="Records with feedback per variant before any decision."
    )
    min_effect: float = Field(
        default=0.02,
        gt=0.0,
        description="Minimum detectable effect in metric units; sets the test's mixture scale.",
    )
    max_days: float = Field(
        default=7.0, gt=0.0, description="An inconclusive test ends here and keeps Production."
    )
    max_error_rate: float = Field(
        default=0.02, ge=0.0, le=1.0, description="Guardrail: Staging's share of failed requests."
    )
    max_p99_ms: float = Field(default=500.0, gt=0.0, description="Guardrail: Staging's p99.")
    guardrail_min_requests: PositiveInt = Field(
        default=50, description="Staging requests before a guardrail may reject."
    )
    schedule: str | None = Field(default="@hourly", description="ab_evaluate's Airflow schedule.")
    design: Literal["unpaired", "paired"] = Field(
        default="unpaired",
        description="unpaired: Staging's answered requests against Production's; paired: "
        "Staging's shadow answers against Production's on the same labelled requests "
        "(needs serving.default_shadow: true).",
    )
    approval: Literal["auto", "required"] = Field(
        default="auto",
        description="required: a person approves the decisions in approval_actions in Airflow "
        "(the ab_approval DAG) before the registry moves; guardrail rejections stay immediate.",
    )
    approval_actions: list[Literal["promote", "reject", "inconclusive"]] = Field(
        default_factory=lambda: ["promote"],
        description="The decisions that wait for a person when approval is required.",
    )
    approval_timeout_hours: float = Field(
        default=24.0, gt=0.0, description="An unanswered approval expires; nothing moves."
    )
    approvers: list[str] = Field(
        default_factory=list,
        description="Airflow user ids who may answer (the HITL operator's assigned_users); "
        "empty: anyone allowed to act on the DAG.",
    )

    @field_validator("approval_actions")
    @classmethod
    def _some_actions(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("list at least one of promote, reject, inconclusive")
        return sorted(set(value), key=value.index)

    @model_validator(mode="before")
    @classmethod
    def _replaced_keys(cls, values: object) -> object:
        """The decay keys of old configs fail with what replaces them, never silently."""
        if isinstance(values, dict):
            old = sorted(set(values) & REPLACED_AB_KEYS)
            if old:
                raise ValueError(
                    f"{', '.join('ab.' + k for k in old)} no longer "
                    f"{'exists' if len(old) == 1 else 'exist'}: Production's decay is "
                    "judged per batch and per day against the version's out-of-sample estimate, "
                    "with its uncertainty; use monitoring.alpha (the test's level), "
                    "monitoring.min_drop (the smallest drop that matters) and monitoring.min_rows "
                    "(labelled rows before a judgement) instead, and remove "
                    f"{', '.join('ab.' + k for k in old)}"
                )
        return values


class AirflowSettings(Section):
    """Where driftloop reaches Airflow's REST API (``driftloop promote`` answering a waiting
    approval); the token belongs in ``DRIFTLOOP_AIRFLOW__TOKEN``, never in the file."""

    api_url: str | None = Field(
        default=None, description="The api-server's base URL, e.g. http://localhost:8080."
    )
    token: SecretStr | None = Field(default=None, description="A JWT for Airflow's REST API.")

    @field_validator("api_url", "token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value  # compose passes .env's empty values as ""

    @field_validator("api_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, got {value!r}")
        return value.rstrip("/") if value else value
