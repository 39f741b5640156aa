"""What counts as a secret in driftloop's settings, and how it is shown: masked.

Tokens and keys are ``SecretStr`` or environment-only (``DRIFTLOOP_ADMIN_TOKEN``,
``DRIFTLOOP_API_KEYS``, ``DRIFTLOOP_AIRFLOW__TOKEN``), but a URL carries its own: the password
of a database or tracking URI (``postgresql://user:password@host/db``), and the whole path of
a webhook (a Slack or Teams webhook's path *is* its credential). Anything that prints a setting
or an error about one (``driftloop config show``, the CLI's MLflow errors, alert warnings) goes
through :func:`redact_url` or :func:`redacted_settings`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from driftloop.config import Settings

MASK = "***"
# settings whose whole path and query are a credential, not only a password
_CREDENTIAL_PATHS = {"webhook_url"}


def redact_url(url: str, path_is_secret: bool = False) -> str:
    """``url`` with its password masked, every query value masked and, when
    ``path_is_secret``, its path masked; a value that is not a URL comes back unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or not parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username
    netloc = host if user is None else f"{user}{':' + MASK if parts.password else ''}@{host}"
    query = urlencode([(k, MASK) for k, _ in parse_qsl(parts.query, keep_blank_values=True)])
    path = f"/{MASK}" if path_is_secret and parts.path.strip("/") else parts.path
    if path_is_secret and parts.query:
        query = MASK
    return urlunsplit((parts.scheme, netloc, path, query, ""))


def redacted_settings(settings: Settings) -> dict[str, Any]:
    """The settings as JSON-ready data with every secret masked (``SecretStr`` fields already
    dump as stars; URLs are masked here)."""

    def walk(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, key) for v in value]
        if isinstance(value, str) and "://" in value:
            return redact_url(value, path_is_secret=key in _CREDENTIAL_PATHS)
        return value

    return walk(settings.model_dump(mode="json"))
