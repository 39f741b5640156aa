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
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from driftloop.config import Settings
from driftloop.vocabulary import Role

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

PRODUCTION, STAGING = Role.PRODUCTION, Role.STAGING  # the aliases are the roles
STAGES = {Role.PRODUCTION: "Production", Role.STAGING: "Staging"}
ARCHIVED = "Archived"
T = TypeVar("T")

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
    """The MLflow server does not answer. Raised by the first :func:`configure` of a command
    or task, before it touches the registry, so it can be retried as a whole (Airflow's retry
    does)."""


@dataclass(frozen=True)
class _Configured:
    """What :func:`configure` set up last: for which settings, the URIs it left in MLflow's
    globals, and the client it made."""

    key: tuple[str, str, str]  # tracking URI, experiment, artifact root
    uris: tuple[str, str]  # MLflow's tracking and registry URIs just after
    client: MlflowClient


_configured: _Configured | None = None
_configuring = threading.Lock()


def _unlock_in_child() -> None:
    """A child forked while another thread configured gets a free lock (and keeps whatever
    was configured: it inherits MLflow's globals with it)."""
    global _configuring
    _configuring = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX; elsewhere nothing forks
    os.register_at_fork(after_in_child=_unlock_in_child)


def configure(settings: Settings) -> MlflowClient:
    """Point MLflow at the configured tracking server or embedded store; return a client.

    Once per process for the same settings: a command, a DAG task (each runs in a process of
    its own) and a server worker configure MLflow, check the server answers and create the
    experiment once, and every later call returns the same client, however many steps ask.
    Configuring other settings, or anything else pointing MLflow elsewhere, makes the next
    call configure again, so the client always matches MLflow's globals.
    """
    key = (
        settings.mlflow_tracking_uri,
        settings.mlflow.experiment,
        str(settings.mlflow_artifact_root),
    )
    with _configuring:
        done = _configured
        if done is not None and done.key == key and done.uris == _mlflow_uris():
            return done.client
        return _configure(settings, key).client


def _mlflow_uris() -> tuple[str, str]:
    import mlflow

    return mlflow.get_tracking_uri(), mlflow.get_registry_uri()


def _configure(settings: Settings, key: tuple[str, str, str]) -> _Configured:
    """The work of :func:`configure`, remembered once it succeeded (never a failure: a
    server away is checked again by the next call)."""
    global _configured
    import mlflow

    _configured = None
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
        try:
            client.create_experiment(
                settings.mlflow.experiment, artifact_location=artifact_location
            )
        except MlflowException as exc:
            # Models share the experiment: another model's process (a bootstrap or a retrain
            # beside this one) may create it between the look and this call, which is fine.
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
    mlflow.set_experiment(settings.mlflow.experiment)
    _configured = _Configured(key, _mlflow_uris(), client)
    return _configured


def run_artifact(
    run_id: str, path: str, read: Callable[[Path], T], tracking_uri: str | None = None
) -> T:
    """One artifact a run logged, downloaded to a temporary folder and read there with
    ``read``, from ``tracking_uri`` (default: where :func:`configure` pointed MLflow)."""
    import mlflow

    with tempfile.TemporaryDirectory() as folder:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=path, dst_path=folder, tracking_uri=tracking_uri
        )
        return read(Path(local))


def reader(target: Settings | str) -> MlflowClient:
    """A client bound to one registry (a config's, or a tracking URI) that changes no
    process-wide MLflow setting and creates nothing: for the reads cached by URI (a version's
    logged training rows, its SHAP importances) and for the plugin's page, which reads many
    models' registries (each its own embedded store, by default) from several threads at
    once, where :func:`configure`'s global tracking URI would race."""
    import mlflow

    uri = target if isinstance(target, str) else target.mlflow_tracking_uri
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
