"""Uploaded state_dicts: the starting weights of fine-tuning jobs."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile, status
from pydantic import BaseModel

import models
from api.auth import OwnerDep
from api.deps import ServingDep, SessionDep, SessionRoute, SettingsDep
from api.errors import rules
from api.params import WeightsId
from core.artifacts import BaseArtifactStore
from core.auth.storage_quota import storage_quota
from core.errors import ConflictError, InvalidInputError
from core.registry import queries as registry
from core.registry.weights import check_loads, describe_net, read_state_dict
from core.tables import new_id

router = APIRouter(prefix="/v1/checkpoints", tags=["checkpoints"], route_class=SessionRoute)


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
        "arch built with these sizes has more bytes of weights than D2L_WEIGHTS_MAX_BYTES",
    ),
)
def upload_checkpoint(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    owner: OwnerDep,
    file: Annotated[UploadFile, File(description="torch.save(net.state_dict()) or safetensors")],
    arch: Annotated[
        str,
        Form(
            description="The architecture the weights belong to.",
            json_schema_extra={"enum": models.list_models()},
        ),
    ],
    config: Annotated[
        str, Form(max_length=10_000, description="The builder's options as JSON.")
    ] = "{}",
    in_channels: Annotated[int, Form(ge=1, le=64)] = 1,
    num_classes: Annotated[int, Form(ge=1, le=100_000)] = 10,
    input_size: Annotated[int | None, Form(ge=1, le=1024)] = None,
) -> UploadedWeightsOut:
    """Stored only after it loads with strict=True into `arch` built with these sizes. The net
    and the file may each take at most D2L_WEIGHTS_MAX_BYTES (422 and 413 beyond), both measured
    before anything is loaded; what an owner stores is bounded by D2L_STORAGE_QUOTA_BYTES
    (413 beyond)."""
    quota = storage_quota(session, owner=owner, settings=settings)
    quota.check_not_full()
    options = parse_config(config)
    try:
        size = input_size or models.get_architecture(arch).default_input_size
    except models.UnknownModelError as error:
        raise InvalidInputError(str(error)) from None
    limit = settings.weights_max_bytes
    shape = {"in_channels": in_channels, "num_classes": num_classes, "input_size": size}
    net = describe_net(arch=arch, config=options, max_bytes=limit, **shape)
    data = file.file.read()  # at most D2L_UPLOAD_MAX_BYTES: api/body_limit.py
    filename = file.filename or "weights.pt"
    state_dict = read_state_dict(filename, data, max_bytes=limit)
    check_loads(state_dict, net=net, arch=arch, in_channels=in_channels, num_classes=num_classes)
    quota.check(adding=sum(tensor.nbytes for tensor in state_dict.values()))
    weights_id = new_id()
    store: BaseArtifactStore = request.app.state.serving.store
    stored = store.save_payload(
        f"uploads/{weights_id}.pt",
        {"arch": arch, "config": options, **shape, "state_dict": state_dict},
    )
    try:
        row = registry.add_uploaded_weights(
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
    except Exception:
        store.delete(f"uploads/{weights_id}.pt")  # no file without its row
        raise
    return UploadedWeightsOut.model_validate(row, from_attributes=True)


@router.get("/{weights_id}", summary="An uploaded state_dict's description")
def get_checkpoint(weights_id: WeightsId, session: SessionDep) -> UploadedWeightsOut:
    row = registry.get_uploaded_weights(session, weights_id=weights_id)
    return UploadedWeightsOut.model_validate(row, from_attributes=True)


@router.delete(
    "/{weights_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an uploaded state_dict (409 while a queued or running job starts from it)",
)
def delete_checkpoint(weights_id: WeightsId, session: SessionDep, serving: ServingDep) -> Response:
    """Frees its bytes from the owner's storage quota. Models fine-tuned from it keep their
    own checkpoints."""
    row = registry.get_uploaded_weights(session, weights_id=weights_id)
    jobs = registry.active_jobs_using_weights(session, weights_id=weights_id)
    if jobs:
        raise ConflictError(
            f"uploaded checkpoint {weights_id!r} is the starting point of queued or running "
            f"job(s) {', '.join(jobs)}; cancel them or wait for them to finish"
        )
    path = row.path
    registry.delete_uploaded_weights_row(session, row=row)
    session.commit()
    serving.store.delete(path)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
