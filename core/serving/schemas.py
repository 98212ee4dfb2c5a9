"""What `POST /v1/models/{id}/predict` takes and answers: the serving path's own schemas, shared by
the API's hot path and the worker's offline predictions (both answer through
core/serving/inference.py)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue

from core.bodies import Frozen, whole

MAX_CLASSES = 100_000  # as many as an uploaded state_dict may have (POST /v1/checkpoints)
TopK = Annotated[int, Field(ge=1, le=MAX_CLASSES), BeforeValidator(whole)]
# Swagger UI's "Try it out" body: a real sample (the first of scikit-learn's digits, a 0), so
# that a model trained on digits answers it as it would answer a user.
DIGIT_ZERO: list[JsonValue] = [
    [0, 0, 5, 13, 9, 1, 0, 0],
    [0, 0, 13, 15, 10, 15, 5, 0],
    [0, 3, 15, 2, 0, 11, 8, 0],
    [0, 4, 12, 0, 0, 8, 8, 0],
    [0, 5, 8, 0, 0, 9, 8, 0],
    [0, 4, 11, 0, 1, 12, 7, 0],
    [0, 2, 14, 5, 10, 12, 0, 0],
    [0, 0, 6, 13, 10, 0, 0, 0],
]


class PredictRequest(Frozen):
    """One raw sample or a list of raw samples, exactly as the dataset stores them."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"inputs": DIGIT_ZERO, "top_k": 3}]},
    )

    inputs: list[Any] = Field(
        min_length=1,
        description="One sample, or a list of samples: at most D2L_PREDICT_MAX_SAMPLES (default "
        "4096) per request (413 beyond).",
    )
    top_k: TopK | None = Field(default=None, description="Only the k most likely classes.")


class Prediction(BaseModel):
    class_index: int
    label: str
    probabilities: dict[str, float]


class RegressionPrediction(BaseModel):
    value: float


class PredictResponse(BaseModel):
    model_id: str
    predictions: list[Prediction] | list[RegressionPrediction]
