"""Trained models: predictions with the preprocessing each model was trained with."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from api.deps import ServingDep
from core.schemas import PredictRequest, PredictResponse

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.post(
    "/{model_id}/predict",
    summary="Predict classes for raw samples",
    responses={404: {"description": "No such model"}, 422: {"description": "Wrong input shape"}},
)
async def predict(model_id: str, body: PredictRequest, serving: ServingDep) -> PredictResponse:
    """Raw samples as the dataset stores them (digits: 8x8 values 0-16), one or a list."""
    return await run_in_threadpool(serving.predict, model_id, body)
