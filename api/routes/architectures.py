"""The model zoo: every architecture with its options, and a concrete net's layers and cost."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

import models
from api.errors import rules
from api.params import ArchName
from core.datasets import list_datasets
from core.errors import NotFoundError
from core.registry.architectures import inspect_architecture, parse_options, summary
from core.registry.schemas import ArchitectureOut, NetOut

router = APIRouter(prefix="/v1/architectures", tags=["architectures"])
RESERVED_QUERY = {"dataset", "input_size"}


@router.get(
    "",
    summary="Every architecture, its options (JSON Schema) and input sizes",
    response_model=list[ArchitectureOut],
)
def list_architectures() -> list[dict[str, Any]]:
    return [summary(name) for name in models.list_models()]


@router.get(
    "/{name}",
    summary="A concrete net for a dataset: layer table, parameters, weight bytes, FLOPs",
    response_model=NetOut,
    description="Other query parameters are the architecture's options, e.g. "
    "`?dataset=digits&activation=relu` or `conv_arch=[[1,16],[1,32]]` (JSON values).",
    responses=rules(
        "input_size within the architecture's min_input_size and max_input_size "
        "(GET /v1/architectures)",
        "other parameters are options the architecture takes, within their bounds",
    ),
)
def get_architecture(
    name: ArchName,
    request: Request,
    dataset: Annotated[
        str, Query(json_schema_extra={"enum": list_datasets()}, description="A built-in dataset.")
    ] = "digits",
    input_size: Annotated[int | None, Query(ge=1, le=1024)] = None,
) -> dict[str, Any]:
    try:
        models.get_architecture(name)
    except models.UnknownModelError as error:
        raise NotFoundError(str(error)) from None
    raw = {k: v for k, v in request.query_params.items() if k not in RESERVED_QUERY}
    return inspect_architecture(
        name, dataset=dataset, input_size=input_size, options=parse_options(raw)
    )
