"""The model registry: list, describe, name (aliases), delete, export; parameters and weights.

Every `{model_id}` here is a model id or an alias (name:VERSION, name:latest, name:production).
Predictions live in api/routes/predict.py.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.auth import OwnerDep
from api.deps import MAX_OFFSET, CpuDep, ServingDep, SessionDep
from api.json_body import StrictJsonRoute
from api.openapi import binary_content
from api.params import AliasName, ModelRef, NameFilter, TensorName
from core.errors import ConflictError
from core.jobs.kinds import load_stored
from core.names import NAME_PATTERN
from core.registry import queries as registry
from core.registry.parameters import (
    MAX_VALUES,
    StateDictFormat,
    parameter_table,
    serialise_state_dict,
    tensor_values,
)
from core.registry.schemas import (
    AliasCreate,
    ExportFormat,
    ModelOut,
    ModelPage,
    TensorStats,
    TensorValues,
)
from core.serving import export as model_export
from core.serving.inside.evaluation import evaluations_folder
from core.tables import Model

router = APIRouter(prefix="/v1/models", tags=["models"], route_class=StrictJsonRoute)
MEDIA_TYPES = {"pt": "application/octet-stream", "safetensors": "application/octet-stream"}


def model_out(session: Session, model: Model) -> ModelOut:
    """The model as GET /v1/models/{id} shows it; what it was built with comes from its job's
    stored body (a training kind's: only those make models)."""
    spec = load_stored(model.job.params)
    return registry.describe(
        session, model=model, config=spec.model_options, dataset=spec.dataset.name
    )


@router.get("", summary="List models, newest first")
def list_models(
    session: SessionDep,
    name: Annotated[
        str | None, Query(pattern=NAME_PATTERN, description="Only models with an alias named so.")
    ] = None,
    arch: NameFilter = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> ModelPage:
    models, total = registry.list_models(session, name=name, arch=arch, limit=limit, offset=offset)
    return ModelPage(
        items=[model_out(session, model) for model in models],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/{model_id}", summary="A model: architecture, data, preprocessing, scores, aliases")
def get_model(model_id: ModelRef, session: SessionDep) -> ModelOut:
    model = registry.resolve_model(session, ref=model_id)
    return model_out(session, model)


@router.delete(
    "/{model_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a model and its checkpoint files (its job and metrics stay)",
    responses={409: {"description": "An alias still points at the model"}},
)
def delete_model(model_id: ModelRef, session: SessionDep, serving: ServingDep) -> Response:
    """Refused (409) while an alias names the model: remove or move the aliases first."""
    model = registry.resolve_model(session, ref=model_id)
    doomed_id = model.id
    paths = registry.delete_model(session, model=model)
    session.commit()
    serving.forget(doomed_id)
    stored = serving.store.list_keys(evaluations_folder(doomed_id))  # what its views cached
    for path in [*paths, *stored]:  # only after the rows are gone: no row points at a missing file
        serving.store.delete(path)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{model_id}/alias",
    summary="Name a model: name:VERSION, name:latest, and name:production if asked",
)
def add_alias(
    model_id: ModelRef, body: AliasCreate, session: SessionDep, serving: ServingDep
) -> ModelOut:
    """The model gets the next version of `name` (or keeps the one it has); `name:latest`
    follows the highest version; `production: true` moves `name:production` here."""
    model = registry.resolve_model(session, ref=model_id)
    try:
        registry.assign_alias(session, model=model, name=body.name, production=body.production)
        session.commit()
    except IntegrityError:  # another request gave out the same version at the same moment
        session.rollback()
        raise ConflictError(f"{body.name!r} changed while naming this model; try again") from None
    serving.refs.clear()
    return model_out(session, model)


@router.delete(
    "/{model_id}/alias/{name}",
    summary="Take a name off a model (its version, and latest/production if they point here)",
)
def remove_alias(
    model_id: ModelRef, name: AliasName, session: SessionDep, serving: ServingDep
) -> ModelOut:
    """`name:latest` falls back to the highest remaining version; `name:production` is removed,
    never moved to another model behind your back."""
    model = registry.resolve_model(session, ref=model_id)
    registry.remove_aliases(session, model=model, name=name)
    session.commit()
    serving.refs.clear()
    return model_out(session, model)


@router.get(
    "/{model_id}/export",
    summary="Download the net as ONNX or TorchScript; preprocessing in the X-D2L-* headers",
    response_class=Response,
    responses=binary_content("application/octet-stream", "The ONNX or TorchScript file"),
)
async def export_model(
    model_id: ModelRef,
    serving: ServingDep,
    owner: OwnerDep,
    cpu: CpuDep,
    format: ExportFormat = "onnx",
) -> Response:
    """The graph maps *preprocessed* inputs (X-D2L-Input-Shape) to logits. X-D2L-Preprocessing
    says how raw samples become inputs; the sidecar (`/export/sidecar`, linked) adds the class
    names and the steps in words."""
    model_id, loaded = await serving.resolve(model_id, owner)
    data = await cpu.run(model_export.export, loaded, format)
    prep = loaded.preprocessing
    filename = f"{model_id}.{model_export.SUFFIXES[format]}"
    return Response(
        content=data,
        media_type=model_export.MEDIA_TYPES[format],
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-D2L-Preprocessing": json.dumps(prep.to_dict() | {"layout": prep.layout}),
            "X-D2L-Input-Shape": json.dumps(["N", *model_export.input_shape(loaded)]),
            "X-D2L-Output": "probabilities=softmax(output, dim=1)"
            if loaded.task != "regression"
            else "value=output[:, 0]",
            "Link": f'</v1/models/{model_id}/export/sidecar>; rel="describedby"',
        },
    )


@router.get("/{model_id}/export/sidecar", summary="What an exported model needs besides weights")
def export_sidecar(model_id: ModelRef, session: SessionDep, serving: ServingDep) -> dict[str, Any]:
    """Input and output names and shapes, the preprocessing (values and steps), class names."""
    model = registry.resolve_model(session, ref=model_id)
    return model_export.sidecar(serving.get(model.id), model_id=model.id, arch=model.arch)


@router.get(
    "/{model_id}/parameters",
    summary="Every parameter and buffer tensor with its statistics, or one tensor's values",
    response_model=list[TensorStats] | TensorValues,
)
async def get_parameters(
    model_id: ModelRef,
    serving: ServingDep,
    owner: OwnerDep,
    cpu: CpuDep,
    name: TensorName = None,
    limit: Annotated[int, Query(ge=1, le=MAX_VALUES)] = 10_000,
) -> Any:
    """Without `name`: name (as in the state_dict), shape, dtype, mean, std, min, max, L2 norm of
    each tensor. With `name`: that tensor's statistics and its first `limit` values."""
    state_dict = (await serving.resolve(model_id, owner))[1].net.state_dict()
    if name is None:
        return await cpu.run(parameter_table, state_dict)
    return await cpu.run(tensor_values, state_dict, name, limit=limit)


@router.get(
    "/{model_id}/state_dict",
    summary="Download the state_dict (.pt for torch.load(weights_only=True), or .safetensors)",
    response_class=Response,
    responses=binary_content("application/octet-stream", "The .pt or .safetensors file"),
)
async def download_state_dict(
    model_id: ModelRef,
    serving: ServingDep,
    owner: OwnerDep,
    cpu: CpuDep,
    format: StateDictFormat = "pt",
) -> Response:
    model_id, loaded = await serving.resolve(model_id, owner)
    data = await cpu.run(serialise_state_dict, loaded.net.state_dict(), format)
    filename = f"{model_id}.{format}"
    return Response(
        content=data,
        media_type=MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
