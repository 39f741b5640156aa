"""The server's OpenAPI description and a docs page that renders it without any CDN."""

from __future__ import annotations

from typing import Any

from driftloop.config import Settings

_ERROR = {
    "description": "refused, with a sentence naming the field and record",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def openapi_spec(settings: Settings) -> dict[str, Any]:
    """OpenAPI 3.1 for this server; record fields are the configured features."""
    features = settings.feature_columns
    numeric = set(features) - set(settings.data.categorical_features)
    record = {
        "type": "object",
        "properties": {
            **{f: {"type": "number" if f in numeric else "string"} for f in features},
            settings.serving.sticky_field: {
                "type": "string",
                "description": "sticky assignment key",
            },
        },
        "required": features,
        "additionalProperties": False,
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": f"driftloop prediction server: {settings.model.name}", "version": "1"},
        "components": {
            "schemas": {
                "Record": record,
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {"type": "string"},
                        "details": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "admin": {"type": "http", "scheme": "bearer"},
            },
        },
        "paths": {
            "/predict": {
                "post": {
                    "summary": "Predict one record or a batch; routed to production or staging",
                    "parameters": [
                        {
                            "name": "X-Client-Key",
                            "in": "header",
                            "schema": {"type": "string"},
                            "description": "sticky assignment key",
                        },
                        {
                            "name": "X-Variant",
                            "in": "header",
                            "schema": {"enum": ["production", "staging"]},
                            "description": "force a variant (testing)",
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        {
                                            "type": "object",
                                            "properties": {
                                                "record": {"$ref": "#/components/schemas/Record"},
                                                "client_id": {"type": "string"},
                                            },
                                            "required": ["record"],
                                        },
                                        {
                                            "type": "object",
                                            "properties": {
                                                "records": {
                                                    "type": "array",
                                                    "maxItems": settings.serving.max_records,
                                                    "items": {
                                                        "$ref": "#/components/schemas/Record"
                                                    },
                                                },
                                                "client_id": {"type": "string"},
                                            },
                                            "required": ["records"],
                                        },
                                    ]
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "per record: record_id, prediction, probabilities (classifiers); plus model, version, variant, request_id"
                        },
                        "400": _ERROR,
                        "401": _ERROR,
                        "413": _ERROR,
                        "415": _ERROR,
                        "422": _ERROR,
                        "503": {"description": "no Production model"},
                    },
                }
            },
            "/feedback": {
                "post": {
                    "summary": "The true value of a predicted record",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "record_id": {
                                            "type": "string",
                                            "minLength": 1,
                                            "maxLength": 64,
                                        },
                                        "value": {"type": "number"}
                                        if settings.data.task == "regression"
                                        else {},
                                    },
                                    "required": ["record_id", "value"],
                                }
                            }
                        },
                    },
                    "responses": {"201": {"description": "stored"}, "409": _ERROR, "422": _ERROR},
                }
            },
            "/health": {
                "get": {
                    "summary": "The process is alive",
                    "responses": {"200": {"description": "ok"}},
                }
            },
            "/ready": {
                "get": {
                    "summary": "A Production model is loaded (degraded when the registry is away)",
                    "responses": {
                        "200": {"description": "ready"},
                        "503": {"description": "not ready"},
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics of every worker",
                    "responses": {"200": {"description": "text"}},
                }
            },
            "/models": {
                "get": {
                    "summary": "Loaded versions, variants and weights",
                    "responses": {"200": {"description": "ok"}},
                }
            },
            "/reports/": {
                "get": {
                    "summary": "Drift and A/B reports, newest first, with their verdicts (HTML)",
                    "responses": {"200": {"description": "an HTML page"}},
                }
            },
            "/reports/{name}": {
                "get": {
                    "summary": "Drift and A/B HTML reports (read-only)",
                    "parameters": [
                        {
                            "name": "name",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {"200": {"description": "file"}, "404": _ERROR},
                }
            },
            "/admin/reload": {
                "post": {
                    "summary": "Reload models and weights now",
                    "security": [{"admin": []}],
                    "responses": {"200": {"description": "reloaded"}, "401": _ERROR, "403": _ERROR},
                }
            },
            "/admin/traffic": {
                "put": {
                    "summary": "Set the staging weight and shadow mode",
                    "security": [{"admin": []}],
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "staging_weight": {
                                            "type": "number",
                                            "minimum": 0,
                                            "maximum": 1,
                                        },
                                        "shadow": {"type": "boolean"},
                                    },
                                }
                            }
                        }
                    },
                    "responses": {
                        "200": {"description": "stored"},
                        "401": _ERROR,
                        "403": _ERROR,
                        "422": _ERROR,
                    },
                }
            },
        },
    }


DOCS_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>driftloop API</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:900px}code,pre{background:#f4f4f4;padding:.1rem .3rem}
h2{margin-top:1.5rem}.method{font-weight:700;text-transform:uppercase;margin-right:.5rem}</style></head>
<body><h1>driftloop prediction server</h1><p>The machine-readable description is at <a href="openapi.json">/openapi.json</a>.</p>
<div id="paths">Loading…</div>
<h2>Example</h2><pre>curl -s localhost:8000/predict -H 'Content-Type: application/json' -d '{"record": {...}}'</pre>
<script>
fetch("openapi.json").then(r => r.json()).then(spec => {
  const out = [];
  for (const [path, ops] of Object.entries(spec.paths)) for (const [method, op] of Object.entries(ops)) {
    const codes = Object.keys(op.responses || {}).join(", ");
    out.push(`<h2><span class="method">${method}</span><code>${path}</code></h2><p>${op.summary}</p><p>Responses: ${codes}</p>`);
  }
  document.getElementById("paths").innerHTML = out.join("");
});
</script></body></html>"""
