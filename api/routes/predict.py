"""Predictions: raw samples or image files in, labels and probabilities out, by id or alias.

This is the hot path, so it skips the costs FastAPI's conveniences carry for a small net: the
body is parsed by pydantic-core straight from bytes (about 6x faster than `json.loads` followed
by validation), the answer is serialised once by pydantic into a plain `Response`, and requests
reach `answer` from api/fast_predict.py, an ASGI layer that skips routing and dependency
solving. The schema Swagger UI shows is the same `PredictRequest`/`PredictResponse`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.auth import OwnerDep
from api.openapi import TOKEN_REQUIRED, json_body
from api.params import ModelRef
from api.serving import Serving
from core.names import MODEL_REF_PATTERN
from core.serving.schemas import MAX_CLASSES, PredictRequest, PredictResponse

router = APIRouter(prefix="/v1/models", tags=["predict"])
# The body is parsed here, not by FastAPI, and the token checked by `answer`: both documented.
PREDICT_BODY: dict[str, Any] = {**json_body(PredictRequest), "security": TOKEN_REQUIRED}
JSON = "application/json"
MODEL_REF = re.compile(MODEL_REF_PATTERN)


async def serving_of(request: Request) -> Serving:
    # async: a plain `def` dependency would cost a thread hop on every prediction.
    return request.app.state.serving  # type: ignore[no-any-return]


FastServing = Annotated[Serving, Depends(serving_of)]


def parse_predict_request(body: bytes) -> PredictRequest:
    """The body as a PredictRequest, or FastAPI's usual 422 naming the field."""
    try:
        return PredictRequest.model_validate_json(body)
    except ValidationError as error:
        errors = error.errors(include_url=False, include_input=False)  # raw bytes: not JSON
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None


def check_model_ref(model_id: str) -> None:
    """The path check FastAPI would make, for the fast path that bypasses its routing."""
    if not MODEL_REF.match(model_id):
        raise RequestValidationError(
            [
                {
                    "type": "string_pattern_mismatch",
                    "loc": ("path", "model_id"),
                    "msg": f"String should match pattern '{MODEL_REF_PATTERN}'",
                    "ctx": {"pattern": MODEL_REF_PATTERN},
                }
            ]
        )


async def answer(request: Request, serving: Serving, model_id: str) -> Response:
    """Authenticate, parse, predict (batched with concurrent requests), serialise: the whole
    hot path."""
    owner = await request.app.state.token_check.owner(request)
    check_model_ref(model_id)
    body = parse_predict_request(await request.body())
    prediction = await serving.predict(model_id, body, owner)
    return Response(prediction.model_dump_json(), media_type=JSON)


PREDICT_PATH = "/{model_id}/predict"


@router.post(
    PREDICT_PATH,
    summary="Predict classes (or values) for raw samples",
    response_model=PredictResponse,
    openapi_extra=PREDICT_BODY,
    responses={404: {"description": "No such model"}, 422: {"description": "Wrong input shape"}},
)
async def predict(model_id: ModelRef, request: Request, serving: FastServing) -> Response:
    """Raw samples as the dataset stores them (digits: 8x8 values 0-16), one or a list.

    `model_id` is the model's id or an alias (name:3, name:latest, name:production).
    Concurrent requests for one model are answered from shared forward passes. (Requests
    are served by api/fast_predict.py, the same `answer` without FastAPI's routing and
    dependency solving; this route documents it, and serves an app built without that layer.)"""
    return await answer(request, serving, model_id)


@router.post(
    "/{model_id}/predict/images",
    summary="Predict classes for PNG/JPEG image files",
    response_model=PredictResponse,
    responses={404: {"description": "No such model"}, 422: {"description": "Not an image"}},
)
async def predict_images(
    model_id: ModelRef,
    serving: FastServing,
    owner: OwnerDep,
    files: Annotated[
        list[UploadFile], File(min_length=1, description="One or more PNG/JPEG images.")
    ],
    top_k: Annotated[
        int | None, Form(ge=1, le=MAX_CLASSES, description="Only the k most likely classes.")
    ] = None,
) -> Response:
    """Each image is converted to the model's channels (grey/RGB) and raw size, then goes
    through the preprocessing the model was trained with; labels are its class names."""
    serving.check_samples(len(files))  # before any file is read
    images = [
        (upload.filename or f"file {index}", await upload.read())
        for index, upload in enumerate(files)
    ]
    prediction = await serving.predict_images(model_id, images, top_k=top_k, owner=owner)
    return Response(prediction.model_dump_json(), media_type=JSON)
