"""The OpenAPI document is generated, not written: its request bodies are the pydantic models
the routes validate with, and a record's schema is the loaded Production signature, with
Staging's listed where it differs. (The same against a real registered model:
``test_serving_app.py``.)"""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask

from driftloop.ab.traffic import TrafficSplit
from serving.blueprints import BLUEPRINTS
from serving.inference import InferRequest
from serving.models import FeatureSchema, LoadedModel, ModelSnapshot
from serving.openapi import openapi_spec
from serving.schemas import FeedbackRequest, PredictRequest, TrafficRequest

PRODUCTION = FeatureSchema(
    ("alcohol", "pH", "colour"), frozenset({"alcohol", "pH"}), frozenset({"pH"})
)
STAGING = FeatureSchema(("alcohol", "sulphates"), frozenset({"alcohol", "sulphates"}))


@pytest.fixture(scope="module")
def app() -> Flask:
    """The server's routes, without its models, database or log."""
    app = Flask(__name__)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    return app


def _snapshot(production: FeatureSchema | None, staging: FeatureSchema | None) -> ModelSnapshot:
    def loaded(variant: str, version: str, schema: FeatureSchema | None) -> LoadedModel | None:
        if schema is None:
            return None
        return LoadedModel(variant, version, None, schema, None, None)  # type: ignore[arg-type]

    return ModelSnapshot(
        loaded("production", "3", production), loaded("staging", "4", staging), TrafficSplit()
    )


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    prefix = "#/components/schemas/"
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].removeprefix(prefix)]
    return schema


def test_the_record_is_productions_signature(app, settings):
    spec = openapi_spec(app, _snapshot(PRODUCTION, PRODUCTION), settings)
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    request = _resolve(spec, body["schema"])
    record = _resolve(spec, request["properties"]["record"]["anyOf"][0])
    sticky = settings.serving.sticky_field
    assert list(record["properties"]) == [*PRODUCTION.names, sticky]
    assert record["properties"]["alcohol"] == {"type": "number"}
    assert record["properties"]["pH"] == {"type": ["number", "null"]}  # nullable: may be missing
    assert record["properties"]["colour"] == {"type": "string"}
    assert record["required"] == ["alcohol", "colour"] and not record["additionalProperties"]
    assert "version 3" in record["description"]
    batch = _resolve(spec, request["properties"]["records"]["anyOf"][0])
    assert _resolve(spec, batch["items"]) is record
    assert batch["maxItems"] == settings.serving.max_records
    assert "StagingRecord" not in spec["components"]["schemas"]  # Staging takes the same


def test_stagings_record_is_listed_where_it_differs(app, settings):
    spec = openapi_spec(app, _snapshot(PRODUCTION, STAGING), settings)
    schemas = spec["components"]["schemas"]
    assert list(schemas["Record"]["properties"]) == [*PRODUCTION.names, "client_id"]
    staging = schemas["StagingRecord"]
    assert list(staging["properties"]) == [*STAGING.names, "client_id"]
    assert staging["required"] == ["alcohol", "sulphates"] and "version 4" in staging["description"]


def test_without_production_the_record_says_so(app, settings):
    record = openapi_spec(app, _snapshot(None, None), settings)["components"]["schemas"]["Record"]
    assert "properties" not in record and "no Production version" in record["description"]


def test_request_bodies_are_the_models_the_routes_validate_with(app, settings):
    spec = openapi_spec(app, _snapshot(PRODUCTION, None), settings)
    bodies = {
        (path, method): operation["requestBody"]["content"]["application/json"]["schema"]
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    }
    expected = {
        ("/predict", "post"): PredictRequest,
        ("/explain", "post"): PredictRequest,  # the same body, fewer records
        ("/feedback", "post"): FeedbackRequest,
        ("/admin/traffic", "put"): TrafficRequest,
        ("/models/{name}/predict", "post"): PredictRequest,  # a model's own routes alike
        ("/models/{name}/explain", "post"): PredictRequest,
        ("/models/{name}/feedback", "post"): FeedbackRequest,
        ("/admin/models/{name}/traffic", "put"): TrafficRequest,
        ("/v2/models/{name}/infer", "post"): InferRequest,  # the Open Inference Protocol's
    }
    assert set(bodies) == set(expected)
    for where, model in expected.items():
        schema = _resolve(spec, bodies[where])
        generated = model.model_json_schema()
        assert schema["title"] == generated["title"] == model.__name__
        assert list(schema["properties"]) == list(generated["properties"])
        assert schema.get("required") == generated.get("required")
    weight = _resolve(spec, bodies[("/admin/traffic", "put")])["properties"]["staging_weight"]
    assert (weight["minimum"], weight["maximum"]) == (0, 1)


def test_every_route_is_documented_and_every_reference_resolves(app, settings):
    spec = openapi_spec(app, _snapshot(PRODUCTION, STAGING), settings)
    routes = {
        (re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in {"static", "operations.openapi", "operations.docs"}
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(p, m) for p, operations in spec["paths"].items() for m in operations}
    assert documented == routes
    assert spec["paths"]["/admin/traffic"]["put"]["security"] == [{"admin": []}]
    assert {"401", "403", "422"} <= set(spec["paths"]["/admin/traffic"]["put"]["responses"])

    def refs(value: Any) -> list[str]:
        if isinstance(value, dict):
            own = [value["$ref"]] if "$ref" in value else []
            return own + [r for v in value.values() for r in refs(v)]
        if isinstance(value, list):
            return [r for v in value for r in refs(v)]
        return []

    names = {r.removeprefix("#/components/schemas/") for r in refs(spec)}
    assert names <= set(spec["components"]["schemas"])
    assert "x-driftloop-signature" not in str(spec)
