"""MLflow Model Registry conventions: roles, tags, reading versions (moving them is
``driftloop.stages.roles``).

A version's role is its alias (``production`` or ``staging``), the source of truth; the
deprecated registry stage (``Production``, ``Staging``, ``Archived``) is kept in step because
users still look for it. Archiving removes the alias. Lineage lives in version tags: the
training-data digest, the drift report that caused the version, its reference profile. The
features a version can take missing travel with its logged model (``NULLABLE_FEATURES``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from driftloop.config import Settings
from driftloop.vocabulary import Role

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

PRODUCTION, STAGING = Role.PRODUCTION, Role.STAGING  # the aliases are the roles
STAGES = {Role.PRODUCTION: "Production", Role.STAGING: "Staging"}
ARCHIVED = "Archived"

# Version tags.
DATA_DIGEST = "driftloop.data_digest"
DRIFT_REPORT = "driftloop.drift_report_id"
DRIFT_BATCH = "driftloop.drift_batch_id"
PROFILE_ID = "driftloop.profile_id"
GATE = "driftloop.gate"  # staging, rejected, pending (undecided) or production (bootstrap)
GATE_REASON = "driftloop.gate_reason"
GATE_ATTEMPT = "driftloop.gate_attempt"  # 1 for the first gate, then one more per re-gate
# The features that had missing values in a version's training data: a run tag (JSON list) and
# the logged model's metadata (``MLmodel``), so the server reads it with the model itself.
NULLABLE_FEATURES = "driftloop.nullable_features"


class RegistryError(RuntimeError):
    """A registry move that is not allowed; the message says why."""


@dataclass(frozen=True)
class VersionInfo:
    """What the rest of driftloop needs to know of a model version."""

    name: str
    version: str
    run_id: str
    source: str
    tags: dict[str, str]

    @property
    def model_uri(self) -> str:
        return model_uri(self.name, self.version)


def model_uri(name: str, version: str) -> str:
    """The ``models:/`` URI MLflow loads a registered version from."""
    return f"models:/{name}/{version}"


class RegistryUnavailable(RuntimeError):
    """The MLflow server does not answer. Raised before a step touches the registry, so the
    step can be retried as a whole (Airflow's retry does)."""


def configure(settings: Settings) -> MlflowClient:
    """Point MLflow at the configured tracking server or embedded store; return a client."""
    import mlflow

    root = settings.mlflow_artifact_root
    root.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_ARTIFACTS_DESTINATION", root.as_uri())
    # MLflow draws a tqdm bar for every artifact download (three per drift check, one per model
    # load); in task logs and on the demo's console they drown the one line per step. Set the
    # variable to true to have them back.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    client = mlflow.MlflowClient()
    try:
        experiment = client.get_experiment_by_name(settings.mlflow.experiment)
    except MlflowException as exc:  # a missing experiment is None: this is the server away
        from driftloop.redaction import redact_url

        raise RegistryUnavailable(
            f"the MLflow server at {redact_url(settings.mlflow_tracking_uri)} does not answer; "
            f"retry once it is back ({type(exc).__name__})"
        ) from exc
    if experiment is None:
        artifact_location = (
            None if settings.mlflow_tracking_uri.startswith("http") else root.as_uri()
        )
        client.create_experiment(settings.mlflow.experiment, artifact_location=artifact_location)
    mlflow.set_experiment(settings.mlflow.experiment)
    return client


def reader(settings: Settings) -> MlflowClient:
    """A client bound to this config's registry that changes no process-wide MLflow setting
    and creates nothing: the plugin's page reads many models' registries (each its own
    embedded store, by default) from several threads at once, where :func:`configure`'s
    global tracking URI would race."""
    import mlflow

    uri = settings.mlflow_tracking_uri
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def _info(version: ModelVersion) -> VersionInfo:
    return VersionInfo(
        version.name, str(version.version), version.run_id, version.source, dict(version.tags)
    )


# What MLflow answers when the model or the alias does not exist (the stores differ); any
# other error (the server away, a 5xx) is raised: "unknown" must not read as "absent".
_ABSENT = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}


def by_alias(client: MlflowClient, name: str, alias: str) -> VersionInfo | None:
    """The version holding ``alias``, or None (also when the model is not registered yet)."""
    from mlflow.exceptions import MlflowException

    try:
        return _info(client.get_model_version_by_alias(name, alias))
    except MlflowException as exc:
        if exc.error_code in _ABSENT:
            return None
        raise


def by_digest(client: MlflowClient, name: str, digest: str) -> VersionInfo | None:
    """An existing version trained on exactly this data, if any (no duplicate versions)."""
    found = client.search_model_versions(f"name='{name}' and tags.`{DATA_DIGEST}`='{digest}'")
    return _info(found[0]) if found else None


def get(client: MlflowClient, name: str, version: str) -> VersionInfo:
    return _info(client.get_model_version(name, version))


def current_version(settings: Settings, role: Role = Role.PRODUCTION) -> str | None:
    """The version number holding ``role`` for the configured model, or None."""
    return getattr(by_alias(configure(settings), settings.model.name, role), "version", None)


def list_versions(settings: Settings) -> list[dict[str, str]]:
    """Every version of the configured model with its aliases, stage and gate tags."""
    client = configure(settings)
    found = client.search_model_versions(f"name='{settings.model.name}'")
    # Search results leave aliases out: read each version whole.
    versions = [client.get_model_version(v.name, v.version) for v in found]
    return [
        {
            "version": str(v.version),
            "aliases": ",".join(v.aliases) or "-",
            "stage": v.current_stage,
            "gate": v.tags.get(GATE, "-"),
            "reason": v.tags.get(GATE_REASON, ""),
            "run_id": v.run_id,
        }
        for v in sorted(versions, key=lambda v: int(v.version))
    ]
