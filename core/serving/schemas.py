"""What `POST /v1/models/{id}/predict` takes and answers: the serving path's own schemas, shared by
the API's hot path and the worker's offline predictions (both answer through
core/serving/inference.py)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from core.bodies import Frozen, whole

MAX_CLASSES = 100_000  # as many as an uploaded state_dict may have (POST /v1/checkpoints)
TopK = Annotated[int, Field(ge=1, le=MAX_CLASSES), BeforeValidator(whole)]


class PredictRequest(Frozen):
    """One raw sample or a list of raw samples, exactly as the dataset stores them."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"inputs": [[0, 0, 5, 13, 9, 1, 0, 0]] * 8}]},
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
