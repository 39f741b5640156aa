"""The server's OpenAPI document, generated from what the server runs on: its routes (each view
declares what it reads and answers with :func:`documented`; the auth decorators mark who may
call it), the pydantic models of its bodies (``serving.schemas``) and the loaded models'
signatures. A record's schema is Production's signature; where Staging's differs, it is listed
too (``StagingRecord``), since a request routed to Staging is checked against Staging's.

Also the docs page, which renders the document without any CDN.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar

from flask import Flask
from pydantic import BaseModel, TypeAdapter

from driftloop.config import Settings
from serving.auth import ADMIN, API_KEY, API_KEY_HEADER
from serving.models import FeatureSchema, LoadedModel, ModelSnapshot
from serving.schemas import SIGNATURE_MARK, Error

REF = "#/components/schemas/{model}"
View = TypeVar("View", bound=Callable[..., Any])


@dataclass(frozen=True)
class Operation:
    """What a view reads and answers with, for the document."""

    body: type[BaseModel] | None
    answer: Any  # a TypedDict or pydantic model for JSON, else a description
    status: int
    refusals: tuple[int, ...]
    parameters: tuple[dict[str, Any], ...]
    media: str
    also: tuple[int, ...]


def documented(
    *,
    body: type[BaseModel] | None = None,
    answer: Any = None,
    status: int = 200,
    refusals: tuple[int, ...] = (),
    parameters: tuple[dict[str, Any], ...] = (),
    media: str = "application/json",
    also: tuple[int, ...] = (),
) -> Callable[[View], View]:
    """Put a view in the OpenAPI document: its summary is its docstring's first paragraph,
    ``body`` the pydantic model of what it reads, ``answer`` the type of what it returns with
    ``status``, ``refusals`` the other statuses it may answer with (an error body each),
    ``also`` those it answers with ``answer`` too."""

    def attach(view: View) -> View:
        view.openapi = Operation(body, answer, status, refusals, parameters, media, also)  # type: ignore[attr-defined]
        return view

    return attach


def header(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """A request header a view reads."""
    return {
        "name": name,
        "in": "header",
        "schema": schema or {"type": "string"},
        "description": description,
    }


def openapi_spec(
    app: Flask,
    snapshot: ModelSnapshot | None,
    settings: Settings,
    names: list[str] | None = None,
) -> dict[str, Any]:
    """OpenAPI 3.1 for ``app``'s documented routes, with the records ``snapshot``'s models take;
    a server of several models (``names``) gives no snapshot: a record is then what the model
    named in the path takes (``GET /v2/models/{name}`` lists its inputs)."""
    components: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        operation = getattr(view, "openapi", None)
        if operation is None:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(
                view, operation, sorted(rule.arguments), components, settings
            )
    if snapshot is None:
        components.update(any_record_components(settings))
    else:
        components.update(record_components(snapshot, settings))
    title = ", ".join(names or [settings.model.name])
    return {
        "openapi": "3.1.0",
        "info": {"title": f"driftloop prediction server: {title}", "version": "1"},
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                API_KEY: {"type": "apiKey", "in": "header", "name": API_KEY_HEADER},
                ADMIN: {"type": "http", "scheme": "bearer"},
            },
        },
        "paths": dict(sorted(paths.items())),
    }


def _operation(
    view: Callable[..., Any],
    operation: Operation,
    arguments: list[str],
    components: dict[str, Any],
    settings: Settings,
) -> dict[str, Any]:
    summary, _, description = (inspect.getdoc(view) or "").partition("\n\n")
    out: dict[str, Any] = {"summary": " ".join(summary.split())}
    if description:
        out["description"] = " ".join(description.split())
    refusals = set(operation.refusals)
    security = getattr(view, "security", None)
    if security == ADMIN:
        out["security"] = [{ADMIN: []}]
        refusals |= {401, 403}
    elif security == API_KEY and settings.serving.require_api_key:
        out["security"] = [{API_KEY: []}]
        refusals |= {401, 503}
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in arguments
    ]
    parameters += operation.parameters
    if parameters:
        out["parameters"] = parameters
    if operation.body is not None:
        schema = _component(operation.body, components)
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
    answer: dict[str, Any] = {"description": HTTPStatus(operation.status).phrase}
    if isinstance(operation.answer, str):
        answer["description"] = operation.answer
        answer["content"] = {operation.media: {"schema": {"type": "string"}}}
    elif operation.answer is not None:
        answer["content"] = {operation.media: {"schema": _component(operation.answer, components)}}
    out["responses"] = {str(operation.status): answer}
    for status in operation.also:
        out["responses"][str(status)] = {**answer, "description": HTTPStatus(status).phrase}
    for status in sorted(refusals):
        out["responses"][str(status)] = {
            "description": HTTPStatus(status).phrase,
            "content": {"application/json": {"schema": _component(Error, components)}},
        }
    return out


def _component(kind: Any, components: dict[str, Any]) -> dict[str, str]:
    """A reference to ``kind``'s schema, added to ``components`` with the ones it uses."""
    name = kind.__name__
    if name not in components:
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            schema = kind.model_json_schema(ref_template=REF)
        else:
            schema = TypeAdapter(kind).json_schema(ref_template=REF)
        for defined, definition in schema.pop("$defs", {}).items():
            components.setdefault(defined, _marked(definition))
        components[name] = _marked(schema)
    return {"$ref": REF.format(model=name)}


def _marked(schema: Any) -> Any:
    """``schema`` with each signature mark made a reference to the record components."""
    if isinstance(schema, dict):
        if SIGNATURE_MARK in schema:
            return {"$ref": REF.format(model=schema[SIGNATURE_MARK])}
        return {key: _marked(value) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_marked(value) for value in schema]
    return schema


def record_schema(schema: FeatureSchema, sticky_field: str) -> dict[str, Any]:
    """What one record must hold for a version with this signature: every feature, numbers or
    strings as the signature says; those it takes missing may be null or absent."""
    properties: dict[str, Any] = {}
    for name in schema.names:
        kind = "number" if name in schema.numeric else "string"
        properties[name] = {"type": [kind, "null"] if name in schema.nullable else kind}
    properties[sticky_field] = {"type": "string", "description": "sticky assignment key"}
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in schema.names if name not in schema.nullable],
        "additionalProperties": False,
    }


def record_components(snapshot: ModelSnapshot, settings: Settings) -> dict[str, Any]:
    """``Record`` (Production's signature), ``Records`` (a batch of them) and, where Staging's
    signature differs, ``StagingRecord``."""
    sticky = settings.serving.sticky_field
    production, staging = snapshot.production, snapshot.staging
    if production is None:
        record: dict[str, Any] = {
            "type": "object",
            "description": "no Production version is loaded: its signature will say",
        }
    else:
        record = {**record_schema(production.schema, sticky), "description": _about(production)}
    components = {
        "Record": record,
        "Records": {
            "type": "array",
            "items": {"$ref": REF.format(model="Record")},
            "minItems": 1,
            "maxItems": settings.serving.max_records,
        },
    }
    if staging is not None and production is not None:
        theirs = record_schema(staging.schema, sticky)
        if theirs != record_schema(production.schema, sticky):
            components["StagingRecord"] = {
                **theirs,
                "description": _about(staging)
                + "; it differs from Production's, and a request routed to Staging is "
                "checked against it",
            }
    return components


def any_record_components(settings: Settings) -> dict[str, Any]:
    """``Record`` and ``Records`` on a server of several models: each model's own signature
    decides, and no model is loaded to write the document."""
    return {
        "Record": {
            "type": "object",
            "description": "a record as the model named in the path takes it: its signature "
            "(GET /v2/models/{name} lists its inputs)",
        },
        "Records": {
            "type": "array",
            "items": {"$ref": REF.format(model="Record")},
            "minItems": 1,
            "maxItems": settings.serving.max_records,
        },
    }


def _about(model: LoadedModel) -> str:
    return f"a record as {model.variant} (version {model.version}) takes it: its signature"


# A backslash at a line's end continues that line: the page's text has no line break there.
DOCS_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>driftloop API</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:900px}\
code,pre{background:#f4f4f4;padding:.1rem .3rem}
h2{margin-top:1.5rem}.method{font-weight:700;text-transform:uppercase;margin-right:.5rem}</style></head>
<body><h1>driftloop prediction server</h1>\
<p>The machine-readable description is at <a href="openapi.json">/openapi.json</a>.</p>
<div id="paths">Loading…</div>
<h2>Example</h2>\
<pre>curl -s localhost:8000/predict -H 'Content-Type: application/json' -d '{"record": {...}}'</pre>
<script>
fetch("openapi.json").then(r => r.json()).then(spec => {
  const out = [];
  for (const [path, ops] of Object.entries(spec.paths)) \
for (const [method, op] of Object.entries(ops)) {
    const codes = Object.keys(op.responses || {}).join(", ");
    out.push(`<h2><span class="method">${method}</span><code>${path}</code></h2>\
<p>${op.summary}</p><p>Responses: ${codes}</p>`);
  }
  document.getElementById("paths").innerHTML = out.join("");
});
</script></body></html>"""
