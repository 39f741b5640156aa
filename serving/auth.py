"""Who may call what, as decorators on the views: ``api_key_required`` (``/predict``,
``/feedback``; enforced when ``serving.require_api_key`` is on) and ``admin_required``
(``/admin/*``). Keys and the admin token come from the environment, never from the config."""

from __future__ import annotations

import functools
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import current_app, request

from serving.validation import RequestError

ADMIN_TOKEN_ENV, API_KEYS_ENV = "DRIFTLOOP_ADMIN_TOKEN", "DRIFTLOOP_API_KEYS"
API_KEY_HEADER = "X-API-Key"
# what the OpenAPI document reads off a decorated view
API_KEY, ADMIN = "apiKey", "admin"

View = TypeVar("View", bound=Callable[..., Any])


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of bytes: a header may hold any Latin-1 text, and
    ``hmac.compare_digest`` refuses strings with non-ASCII characters (a 500)."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


@dataclass(frozen=True)
class Secrets:
    """The API keys and the admin token this server accepts, read once at start."""

    require_api_key: bool
    api_keys: frozenset[str]
    admin_token: str

    @classmethod
    def from_environment(cls, require_api_key: bool) -> Secrets:
        keys = {k.strip() for k in os.environ.get(API_KEYS_ENV, "").split(",") if k.strip()}
        return cls(require_api_key, frozenset(keys), os.environ.get(ADMIN_TOKEN_ENV, ""))

    def check_api_key(self, given: str) -> None:
        if not self.require_api_key:
            return
        if not self.api_keys:
            raise RequestError(
                503, f"API keys are required but none are configured ({API_KEYS_ENV})"
            )
        if not any(same_secret(given, key) for key in self.api_keys):
            raise RequestError(401, f"a valid API key is required in the {API_KEY_HEADER} header")

    def check_admin(self, authorization: str) -> None:
        if not self.admin_token:
            raise RequestError(403, f"admin endpoints are disabled: set {ADMIN_TOKEN_ENV}")
        if not same_secret(authorization.removeprefix("Bearer "), self.admin_token):
            raise RequestError(401, "a valid admin token is required (Authorization: Bearer ...)")


def _secrets() -> Secrets:
    return current_app.extensions["driftloop"]["secrets"]


def api_key_required(view: View) -> View:
    """Refuse the request unless it carries a valid ``X-API-Key`` (when keys are required)."""

    @functools.wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        _secrets().check_api_key(request.headers.get(API_KEY_HEADER, ""))
        return view(*args, **kwargs)

    checked.security = API_KEY  # type: ignore[attr-defined]
    return checked  # type: ignore[return-value]


def admin_required(view: View) -> View:
    """Refuse the request unless it carries the admin token (``Authorization: Bearer ...``)."""

    @functools.wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        _secrets().check_admin(request.headers.get("Authorization", ""))
        return view(*args, **kwargs)

    checked.security = ADMIN  # type: ignore[attr-defined]
    return checked  # type: ignore[return-value]
