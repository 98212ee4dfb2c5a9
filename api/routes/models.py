"""Trained models: predictions, parameters and the state_dict download."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from api.deps import ServingDep
from core.errors import InvalidInputError
from core.parameters import (
    MAX_VALUES,
    StateDictFormat,
    parameter_table,
    serialise_state_dict,
    tensor_values,
)
from core.schemas import PredictRequest, PredictResponse

router = APIRouter(prefix="/v1/models", tags=["models"])
MAX_IMAGES = 256
MEDIA_TYPES = {"pt": "application/octet-stream", "safetensors": "application/octet-stream"}


@router.post(
    "/{model_id}/predict",
    summary="Predict classes for raw samples",
    responses={404: {"description": "No such model"}, 422: {"description": "Wrong input shape"}},
)
async def predict(model_id: str, body: PredictRequest, serving: ServingDep) -> PredictResponse:
    """Raw samples as the dataset stores them (digits: 8x8 values 0-16), one or a list."""
    return await run_in_threadpool(serving.predict, model_id, body)


@router.post(
    "/{model_id}/predict/images",
    summary="Predict classes for PNG/JPEG image files",
    responses={404: {"description": "No such model"}, 422: {"description": "Not an image"}},
)
async def predict_images(
    model_id: str,
    serving: ServingDep,
    files: Annotated[list[UploadFile], File(description="One or more PNG/JPEG images.")],
    top_k: Annotated[int | None, Form(ge=1, description="Only the k most likely classes.")] = None,
) -> PredictResponse:
    """Each image is converted to the model's channels (grey/RGB) and raw size, then goes
    through the preprocessing the model was trained with; labels are its class names."""
    if len(files) > MAX_IMAGES:
        raise InvalidInputError(f"at most {MAX_IMAGES} images per request, got {len(files)}")
    images = [
        (upload.filename or f"file {index}", await upload.read())
        for index, upload in enumerate(files)
    ]
    return await run_in_threadpool(serving.predict_images, model_id, images, top_k=top_k)


@router.get(
    "/{model_id}/parameters",
    summary="Every parameter and buffer tensor with its statistics, or one tensor's values",
)
async def get_parameters(
    model_id: str,
    serving: ServingDep,
    name: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_VALUES)] = 10_000,
) -> Any:
    """Without `name`: name (as in the state_dict), shape, dtype, mean, std, min, max, L2 norm of
    each tensor. With `name`: that tensor's statistics and its first `limit` values."""
    state_dict = (await run_in_threadpool(serving.get, model_id)).net.state_dict()
    if name is None:
        return parameter_table(state_dict)
    return tensor_values(state_dict, name, limit=limit)


@router.get(
    "/{model_id}/state_dict",
    summary="Download the state_dict (.pt for torch.load(weights_only=True), or .safetensors)",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def download_state_dict(
    model_id: str, serving: ServingDep, format: StateDictFormat = "pt"
) -> Response:
    loaded = await run_in_threadpool(serving.get, model_id)
    data = await run_in_threadpool(serialise_state_dict, loaded.net.state_dict(), format)
    filename = f"{model_id}.{format}"
    return Response(
        content=data,
        media_type=MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
