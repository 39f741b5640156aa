"""Alerts: the loop's notable events posted as JSON to a webhook (Slack, Teams, Alertmanager,
or any receiver), so people hear about them without watching dashboards.

Events, each sent where it happens, so the DAGs and the CLI alert alike: ``drift_detected``
(``drift.monitor``, on a new drift verdict), ``retrain_rejected`` (``training.gatekeeper``, at the
gate or a re-gate), ``promoted``, ``rejected``, ``inconclusive`` and ``rolled_back``
(``promotion``), ``sample_ratio_mismatch`` (``ab.evaluate``, the first look that finds one),
``traffic_drift`` (``traffic_check``, a window of served traffic that drifted; it starts no
retrain) and ``retrain_failed`` (the retrain DAG's failure callback). Each message is
``{"event", "model", "summary", "details", "sent_at"}``. Without ``alerts.webhook_url`` nothing
is sent. A failing receiver is retried a few times and then logged: an alert never fails the
work that raised it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from driftloop.config import Settings
from driftloop.redaction import redact_url

log = logging.getLogger(__name__)
EVENTS = (
    "drift_detected",
    "retrain_failed",
    "retrain_rejected",
    "promoted",
    "rejected",
    "inconclusive",
    "rolled_back",
    "approval_declined",
    "approval_expired",
    "approval_answered_late",
    "performance_decay",
    "performance_estimated_drop",
    "sample_ratio_mismatch",
    "traffic_drift",
)


def send(
    settings: Settings, event: str, summary: str, details: dict[str, Any] | None = None
) -> bool:
    """Post one event to the configured webhook; True when it was delivered."""
    import requests
    from tenacity import (
        RetryError,
        Retrying,
        retry_if_exception_type,
        stop_after_attempt,
        wait_exponential,
    )

    if event not in EVENTS:
        raise ValueError(f"unknown alert event {event!r}; known: {', '.join(EVENTS)}")
    url = settings.alerts.webhook_url
    if not url:
        return False
    message = {
        "event": event,
        "model": settings.model.name,
        "summary": summary,
        "details": details or {},
        "sent_at": datetime.now(UTC).isoformat(),
    }
    try:
        for attempt in Retrying(
            stop=stop_after_attempt(settings.alerts.attempts),
            wait=wait_exponential(multiplier=0.5, max=5),
            retry=retry_if_exception_type(requests.RequestException),
        ):
            with attempt:
                response = requests.post(url, json=message, timeout=settings.alerts.timeout_seconds)
                response.raise_for_status()
    except (RetryError, requests.RequestException) as exc:
        # requests' messages quote the URL, whose path is the webhook's credential
        cause = exc.last_attempt.exception() if isinstance(exc, RetryError) else exc
        where = redact_url(url, path_is_secret=True)
        log.warning("alert %s not delivered to the webhook %s: %s", event, where, _kind(cause))
        return False
    return True


def _kind(error: BaseException | None) -> str:
    """What went wrong, without the URL that requests' messages quote."""
    response = getattr(error, "response", None)
    if response is not None:
        return f"HTTP {response.status_code}"
    return type(error).__name__ if error is not None else "unknown error"
