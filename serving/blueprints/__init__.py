"""The server's routes, one blueprint per concern. A new endpoint is a view in one of these
(or a new blueprint listed in :data:`BLUEPRINTS`), with its body a pydantic model in
``serving.schemas``, its access an ``serving.auth`` decorator and ``documented`` for the
OpenAPI document; metrics and error handling come from ``serving.hooks`` on their own."""

from __future__ import annotations

from serving.blueprints import admin, explain, feedback, inference, operations, predict

BLUEPRINTS = (predict.bp, explain.bp, feedback.bp, inference.bp, admin.bp, operations.bp)
