"""Names of the events the loop's parts exchange (Airflow Assets in the DAGs).

The library knows nothing of Airflow; the DAGs build their Assets from these URIs, so every
producer and consumer agrees on one spelling, and the drift event's payload is built and read
here, so its shape has one home.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from driftloop.vocabulary import DriftStatus

DRIFT_ASSET_URI = "driftloop://drift"
DECAY_ASSET_URI = "driftloop://decay"
APPROVAL_ASSET_URI = "driftloop://approval"
# The DAG that asks a person, and its human-in-the-loop task: the CLI answers it by these names.
APPROVAL_DAG_ID = "ab_approval"
APPROVAL_TASK_ID = "wait_for_person"
# What joins a DAG kind (or an Asset's URI) to a model's name in a config with ``models:``.
MODEL_SEPARATOR = "__"


def model_dag_id(kind: str, model: str | None) -> str:
    """The id of a model's DAG of this kind (``drift_monitor``, ``retrain``, ...): the kind
    itself for a config without ``models:`` (the ids of single-model deployments never change),
    else ``<kind>__<model>``, so that each model's loop has its own DAGs."""
    return kind if model is None else f"{kind}{MODEL_SEPARATOR}{model}"


def model_asset_uri(uri: str, model: str | None) -> str:
    """A model's Asset of an event (``DRIFT_ASSET_URI``, ...): the URI itself for a config
    without ``models:``, else ``<uri>/<model>``, so that drift on one model starts only that
    model's retrain."""
    return uri if model is None else f"{uri}/{model}"


def drift_event(outcomes: Iterable[Mapping[str, Any] | None]) -> dict[str, Any] | None:
    """The ``extra`` of the drift event a ``drift_monitor`` run emits, or None without new drift.

    One event per run, listing every new drift verdict of the run (``drift_checks``, oldest
    batch first): separate events could reach the scheduler at different moments and start a
    second retrain. ``batch_id``, ``report_id`` and ``model_version`` are the newest batch's,
    for readers of one drift at a time.
    """
    found = sorted(
        (o for o in outcomes if o and o["status"] == DriftStatus.DRIFT and o["new"]),
        key=lambda o: o["batch_id"],
    )
    if not found:
        return None
    newest = found[-1]
    return {
        "batch_id": newest["batch_id"],
        "report_id": newest["report_id"],
        "model_version": newest["model_version"],
        "drift_checks": [{k: o[k] for k in ("batch_id", "report_id")} for o in found],
    }


def drift_check_ids(extras: Iterable[Mapping[str, Any]]) -> list[int | None]:
    """The drift checks (report ids) that waiting drift events name; an event emitted before
    events listed several checks names its own ``report_id``."""
    return [
        check.get("report_id") for extra in extras for check in extra.get("drift_checks") or [extra]
    ]
