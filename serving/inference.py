"""The Open Inference Protocol (v2, REST): its request and response bodies, and the conversion
between its tensors and the records ``/predict`` takes, so an ``infer`` request is routed,
checked, predicted and logged exactly as ``/models/<name>/predict`` is (``serving.prediction``).

A request sends the records in either of two shapes:

- one input per feature column, named after it, of shape ``[rows]`` (or ``[rows, 1]``);
- one input of shape ``[rows, features]`` holding the features in the signature's order
  (``GET /v2/models/<name>`` lists them), its data flat in row-major order or nested by rows.

The response has ``predict`` (``[rows]``), for classifiers ``predict_proba``
(``[rows, classes]``, the class labels in its ``parameters``), and ``record_id`` (``[rows]``),
the ids ``/models/<name>/feedback`` takes. https://github.com/kserve/open-inference-protocol
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt
from typing_extensions import TypedDict

from driftloop.scoring.model import FeatureSchema
from serving.prediction import Prediction
from serving.validation import RequestError, shown

Datatype = Literal[
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
]
OUTPUTS = ("predict", "predict_proba", "record_id")
CLIENT_ID = "client_id"  # a request parameter: the sticky assignment key, as in /predict


class TensorInput(BaseModel):
    """One input tensor: a feature column, or every feature as ``[rows, features]``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    shape: list[Annotated[StrictInt, Field(ge=0)]] = Field(min_length=1, max_length=2)
    datatype: Datatype
    parameters: dict[str, Any] | None = None
    data: list[Any]


class RequestedOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    """``POST /v2/models/<name>/infer``: the records as tensors (one per feature column, or one
    ``[rows, features]``); ``parameters.client_id`` is the sticky assignment key."""

    model_config = ConfigDict(extra="forbid")
    refusal: ClassVar[str] = (
        'the body is not an inference request: {"inputs": [{"name": ..., "shape": [...], '
        '"datatype": ..., "data": [...]}]}'
    )

    id: str | None = Field(default=None, max_length=200)
    parameters: dict[str, Any] | None = None
    inputs: list[TensorInput] = Field(min_length=1)
    outputs: list[RequestedOutput] | None = None


class TensorOutput(TypedDict):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]
    parameters: dict[str, Any]


class InferResponse(TypedDict):
    model_name: str
    model_version: str
    id: str
    parameters: dict[str, Any]  # variant, request_id
    outputs: list[TensorOutput]


class TensorMetadata(TypedDict):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(TypedDict):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class ModelReady(TypedDict):
    name: str
    ready: bool


class ServerReady(TypedDict):
    ready: bool


class ServerLive(TypedDict):
    live: bool


class ServerMetadata(TypedDict):
    name: str
    version: str
    extensions: list[str]


def _flat(data: list[Any], name: str) -> list[Any]:
    """Row-major values of nested lists."""
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        try:
            value = next(stack[-1])
        except StopIteration:
            stack.pop()
            continue
        if isinstance(value, list):
            if len(stack) > 3:
                raise RequestError(
                    422, f"input {shown(name)}: data is nested deeper than its shape"
                )
            stack.append(iter(value))
        else:
            out.append(value)
    return out


def _checked_values(tensor: TensorInput) -> list[Any]:
    """The tensor's values, flat, after checking they fill its shape and fit its datatype
    (``null`` is a missing value, as in ``/predict``)."""
    values = _flat(tensor.data, tensor.name)
    expected = math.prod(tensor.shape)
    if len(values) != expected:
        raise RequestError(
            422,
            f"input {shown(tensor.name)}: shape {tensor.shape} holds {expected} values, "
            f"its data has {len(values)}",
        )
    kind = tensor.datatype
    for position, value in enumerate(values):
        if value is None:
            continue
        if kind == "BYTES":
            fits = isinstance(value, str)
        elif kind == "BOOL":
            fits = isinstance(value, bool)
        elif kind.startswith(("INT", "UINT")):
            fits = type(value) is int and (value >= 0 or kind.startswith("INT"))
        else:
            fits = type(value) in (int, float)
        if not fits:
            raise RequestError(
                422,
                f"input {shown(tensor.name)}: value {position} ({shown(value)}) is not of "
                f"datatype {kind}",
            )
    return values


def records_of(request: InferRequest, schema: FeatureSchema, sticky_field: str) -> list[dict]:
    """The request's tensors as the records ``/predict`` takes."""
    names = schema.names
    inputs = request.inputs
    first = inputs[0]
    if len(inputs) == 1 and len(first.shape) == 2 and not _is_column(first, names):
        rows, width = first.shape
        if width != len(names):
            raise RequestError(
                422,
                f"input {shown(first.name)}: shape [rows, features] needs {len(names)} features "
                f"(in this order: {', '.join(names[:20])}{'...' if len(names) > 20 else ''}), "
                f"got {width}",
            )
        values = _checked_values(first)
        return [
            dict(zip(names, values[r * width : (r + 1) * width], strict=True)) for r in range(rows)
        ]
    known = set(names) | {sticky_field}
    columns: dict[str, list[Any]] = {}
    rows = None
    for tensor in inputs:
        if tensor.name not in known:
            raise RequestError(
                422,
                f"input {shown(tensor.name)} is not a feature of this model; it takes "
                f"{', '.join(names[:20])}{'...' if len(names) > 20 else ''} (one input per "
                "column), or one input of shape [rows, features]",
            )
        if tensor.name in columns:
            raise RequestError(422, f"input {shown(tensor.name)} is given twice")
        if not _is_column(tensor, known):
            raise RequestError(
                422, f"input {shown(tensor.name)}: a column's shape is [rows] or [rows, 1]"
            )
        if rows is not None and tensor.shape[0] != rows:
            raise RequestError(
                422,
                f"input {shown(tensor.name)} has {tensor.shape[0]} rows, the inputs before it "
                f"{rows}",
            )
        rows = tensor.shape[0]
        columns[tensor.name] = _checked_values(tensor)
    return [{name: column[r] for name, column in columns.items()} for r in range(rows or 0)]


def _is_column(tensor: TensorInput, names: Any) -> bool:
    return tensor.name in names and (len(tensor.shape) == 1 or tensor.shape[1] == 1)


def datatype_of(values: list[Any]) -> str:
    if values and all(isinstance(v, bool) for v in values):
        return "BOOL"
    if values and all(type(v) is int for v in values):
        return "INT64"
    if values and all(type(v) in (int, float) for v in values):
        return "FP64"
    return "BYTES"


def response_of(answered: Prediction, request: InferRequest, model_name: str) -> InferResponse:
    """The prediction as output tensors (those ``request.outputs`` names, else all)."""
    rows = len(answered.record_ids)
    predictions = answered.predictions
    kind = datatype_of(predictions)
    available: dict[str, TensorOutput] = {
        "predict": {
            "name": "predict",
            "shape": [rows],
            "datatype": kind,
            "data": predictions if kind != "BYTES" else [str(p) for p in predictions],
            "parameters": {},
        },
        "record_id": {
            "name": "record_id",
            "shape": [rows],
            "datatype": "BYTES",
            "data": answered.record_ids,
            "parameters": {},
        },
    }
    probabilities, classes = answered.probabilities, answered.model.classes
    if probabilities is not None and classes is not None:
        available["predict_proba"] = {
            "name": "predict_proba",
            "shape": [rows, len(classes)],
            "datatype": "FP64",
            "data": [p for row in probabilities for p in row],
            "parameters": {"classes": [str(c) for c in classes]},
        }
    wanted = [o.name for o in request.outputs or []] or [o for o in OUTPUTS if o in available]
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise RequestError(
            400,
            f"output {shown(unknown[0])} is not one this model gives; it gives "
            f"{', '.join(available)}",
        )
    return {
        "model_name": model_name,
        "model_version": answered.model.version,
        "id": request.id or answered.request_id,
        "parameters": {"variant": answered.model.variant, "request_id": answered.request_id},
        "outputs": [available[name] for name in wanted],
    }


def metadata_of(
    name: str, versions: list[str], schema: FeatureSchema, classes: list[Any] | None
) -> ModelMetadata:
    """What ``GET /v2/models/<name>`` says: the inputs one per feature column (or one
    ``[rows, features]`` in this order) and the outputs."""
    inputs: list[TensorMetadata] = [
        {"name": f, "datatype": "FP64" if f in schema.numeric else "BYTES", "shape": [-1]}
        for f in schema.names
    ]
    outputs: list[TensorMetadata] = [
        {
            "name": "predict",
            "datatype": "FP64" if classes is None else datatype_of(list(classes)),
            "shape": [-1],
        }
    ]
    if classes is not None:
        outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(classes)]})
    outputs.append({"name": "record_id", "datatype": "BYTES", "shape": [-1]})
    return {
        "name": name,
        "versions": versions,
        "platform": "driftloop-sklearn",
        "inputs": inputs,
        "outputs": outputs,
    }
