"""The bodies the server reads and writes, described once with pydantic: requests are validated
against these models and the OpenAPI document is generated from them (``serving.openapi``).

They describe envelopes only. The records inside a prediction request are checked column by
column against the model version's signature (``serving.validation``): a pydantic model per
record would cost milliseconds on a 1000-record request. Responses are ``TypedDict``s, plain
dicts at run time, so building one costs no more than building the dict.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, NotRequired, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema, model_validator
from typing_extensions import TypedDict  # pydantic needs this one below Python 3.12

from serving.validation import MAX_DETAILS, RequestError, shown

# A record's schema is the loaded model's signature, known only at run time: the OpenAPI
# document puts a reference to its "Record" (or "Records") component where a mark stands.
SIGNATURE_MARK = "x-driftloop-signature"


def _record_or_records(schema: dict[str, Any]) -> None:
    schema["oneOf"] = [{"required": ["record"]}, {"required": ["records"]}]


class PredictRequest(BaseModel):
    """``{"record": {...}}`` or ``{"records": [{...}, ...]}``, with an optional ``client_id``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_record_or_records)
    refusal: ClassVar[str] = "the request body does not have the expected shape"

    record: Annotated[dict[str, Any], WithJsonSchema({SIGNATURE_MARK: "Record"})] | None = None
    records: Annotated[list[dict[str, Any]], WithJsonSchema({SIGNATURE_MARK: "Records"})] | None = (
        None
    )
    client_id: str | None = Field(
        default=None, description="sticky assignment key: one key, one variant"
    )

    @model_validator(mode="after")
    def _one_form(self) -> PredictRequest:
        if (self.record is None) == (self.records is None):
            raise ValueError("give either 'record' (one object) or 'records' (a list of objects)")
        return self

    @property
    def items(self) -> list[dict[str, Any]]:
        return [self.record] if self.record is not None else list(self.records or [])


class FeedbackRequest(BaseModel):
    """The true value of a record ``/predict`` answered (or will have answered)."""

    model_config = ConfigDict(extra="forbid")
    refusal: ClassVar[str] = "the request body does not have the expected shape"

    # the ids /predict hands out are 34 or more characters; control characters (NUL among
    # them, which PostgreSQL cannot store) are never part of one
    record_id: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")
    value: float | int | str | bool = Field(
        description="a class label, or a regression's true value (a finite number)"
    )


class TrafficRequest(BaseModel):
    """The share of requests Staging answers, and whether it also shadows Production."""

    # strict: the string "false" is not false, and true is not a weight of 1
    model_config = ConfigDict(extra="forbid", strict=True)
    refusal: ClassVar[str] = 'send {"staging_weight": 0..1, "shadow": false}'

    # an integer too: one beyond float range is then refused by name, not as "not a number";
    # the range is checked by TrafficSplit, whose message names it
    staging_weight: Annotated[
        float | int, WithJsonSchema({"type": "number", "minimum": 0, "maximum": 1})
    ]
    shadow: bool = False


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], body: Any) -> M:
    """Validate a JSON body against a pydantic model; 422 with each problem named."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        details = [
            f"{_where(e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors(include_input=False)[:MAX_DETAILS]
        ]
        refusal = getattr(model, "refusal", "the request body does not have the expected shape")
        raise RequestError(422, refusal, details) from None


def _where(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location; a key sent in the body may be of any length."""
    return ".".join(str(p) if len(str(p)) <= 60 else shown(p) for p in loc) or "body"


class Answer(TypedDict):
    """One record's answer; ``record_id`` is what ``/feedback`` takes."""

    record_id: str
    prediction: Any
    probabilities: NotRequired[dict[str, float]]  # classifiers: per class label


class PredictResponse(TypedDict):
    request_id: str
    model: str
    version: str
    variant: Literal["production", "staging"]
    predictions: list[Answer]


class Explanation(TypedDict):
    prediction: Any
    shap: dict[str, float]  # per original feature, of the predicted class (or value)


class ExplainResponse(TypedDict):
    request_id: str
    model: str
    version: str
    variant: Literal["production", "staging"]
    method: str  # which explainer: exact TreeSHAP, linear, or the bounded permutation fallback
    quality: Literal["exact", "approximate"]
    explanations: list[Explanation]


class FeedbackResponse(TypedDict):
    record_id: str
    stored: bool


class TrafficResponse(TypedDict):
    staging_weight: float
    shadow: bool


class ReloadResponse(TypedDict):
    """The versions loaded now."""

    production: str | None
    staging: str | None
    registry_ok: bool


class Error(TypedDict):
    """A refusal: a sentence, and the field and record of each problem (at most ten)."""

    error: str
    details: list[str]


class Health(TypedDict):
    status: Literal["ok"]


class Ready(TypedDict):
    ready: bool
    status: NotRequired[str]
    error: NotRequired[str | None]
    refreshed_at: NotRequired[str | None]
    reason: NotRequired[str]  # when not ready
    models: NotRequired[list[str]]  # a server of several models: every declared model
    loaded: NotRequired[list[str]]  # ... and those loaded in the worker that answered


class VariantInfo(TypedDict):
    version: str
    features: list[str]
    nullable: list[str]


class Models(TypedDict):
    model: str
    variants: dict[str, VariantInfo | None]
    weights: dict[str, float]
    shadow: bool
    split_version: int  # the traffic split's version this replica routes by
    registry_ok: bool
