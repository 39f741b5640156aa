"""The one place that moves model versions between roles in the MLflow registry.

A version's role is its alias, the source of truth; the deprecated stage is kept in step
(``driftloop.registry`` names both). Only the stages that decide (retrain's register and gate,
promotion, rollback) call these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftloop.registry import ARCHIVED, STAGES
from driftloop.vocabulary import Role

if TYPE_CHECKING:
    from mlflow import MlflowClient


def set_role(client: MlflowClient, name: str, version: str, role: Role) -> None:
    """Give ``version`` the alias ``role`` and the matching stage.

    The version that held the alias before loses it with the alias move; its stage is left
    for the caller to decide (promotion archives it, a new Staging archives the old one).
    """
    client.set_registered_model_alias(name, role, version)
    client.transition_model_version_stage(name, version, STAGES[role])


def archive(client: MlflowClient, name: str, version: str) -> None:
    """Take every alias off ``version`` and move it to the Archived stage."""
    for alias in client.get_model_version(name, version).aliases:
        client.delete_registered_model_alias(name, alias)
    client.transition_model_version_stage(name, version, ARCHIVED)


def ensure_registered_model(client: MlflowClient, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="Managed by driftloop.")
