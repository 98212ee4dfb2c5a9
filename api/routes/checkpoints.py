"""Uploaded state_dicts: the starting weights of fine-tuning jobs."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile, status
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

import models
from api.auth import OwnerDep
from api.deps import SessionDep
from api.errors import rules
from api.params import WeightsId
from core import queries
from core.artifacts import BaseArtifactStore
from core.errors import InvalidInputError
from core.tables import new_id
from core.weights import check_loads, read_state_dict

router = APIRouter(prefix="/v1/checkpoints", tags=["checkpoints"])
MAX_WEIGHTS_BYTES = 2 * 1024**3


class UploadedWeightsOut(BaseModel):
    id: str
    filename: str
    arch: str
    config: dict[str, Any]
    in_channels: int
    num_classes: int
    input_size: int
    sha256: str
    bytes: int
    created_at: datetime


def parse_config(config: str) -> dict[str, Any]:
    try:
        parsed = json.loads(config)
    except json.JSONDecodeError as error:
        raise InvalidInputError(f"config must be a JSON object: {error}") from None
    if not isinstance(parsed, dict):
        raise InvalidInputError('config must be a JSON object, e.g. {"activation": "relu"}')
    return parsed


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Upload a state_dict (.pt or .safetensors) for fine-tuning",
    responses=rules(
        "the file is not a .pt (weights_only) or .safetensors state_dict",
        "config is not a JSON object of the arch's options within their bounds "
        "(GET /v1/architectures)",
        "the state_dict does not load strictly into arch built with these sizes",
    ),
)
async def upload_checkpoint(
    request: Request,
    session: SessionDep,
    owner: OwnerDep,
    file: Annotated[UploadFile, File(description="torch.save(net.state_dict()) or safetensors")],
    arch: Annotated[
        str,
        Form(
            description="The architecture the weights belong to.",
            json_schema_extra={"enum": models.list_models()},
        ),
    ],
    config: Annotated[str, Form(description="The builder's options as JSON.")] = "{}",
    in_channels: Annotated[int, Form(ge=1, le=64)] = 1,
    num_classes: Annotated[int, Form(ge=1, le=100_000)] = 10,
    input_size: Annotated[int | None, Form(ge=1, le=1024)] = None,
) -> UploadedWeightsOut:
    """Stored only after it loads with strict=True into `arch` built with these sizes."""
    options = parse_config(config)
    try:
        size = input_size or models.get_architecture(arch).default_input_size
    except models.UnknownModelError as error:
        raise InvalidInputError(str(error)) from None
    data = await file.read(MAX_WEIGHTS_BYTES + 1)
    if len(data) > MAX_WEIGHTS_BYTES:
        raise InvalidInputError(f"the file is larger than {MAX_WEIGHTS_BYTES} bytes")
    filename = file.filename or "weights.pt"
    state_dict = await run_in_threadpool(read_state_dict, filename, data)
    shape = {"in_channels": in_channels, "num_classes": num_classes, "input_size": size}
    await run_in_threadpool(check_loads, state_dict, arch=arch, config=options, **shape)
    weights_id = new_id()
    store: BaseArtifactStore = request.app.state.serving.store
    stored = await run_in_threadpool(
        store.save_payload,
        f"uploads/{weights_id}.pt",
        {"arch": arch, "config": options, **shape, "state_dict": state_dict},
    )
    row = queries.add_uploaded_weights(
        session,
        filename=filename,
        arch=arch,
        config=options,
        stored=stored,
        weights_id=weights_id,
        owner=owner,
        **shape,
    )
    session.commit()
    return UploadedWeightsOut.model_validate(row, from_attributes=True)


@router.get("/{weights_id}", summary="An uploaded state_dict's description")
def get_checkpoint(weights_id: WeightsId, session: SessionDep) -> UploadedWeightsOut:
    row = queries.get_uploaded_weights(session, weights_id=weights_id)
    return UploadedWeightsOut.model_validate(row, from_attributes=True)
