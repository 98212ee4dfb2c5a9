"""Inside the nets: feature maps, first-layer filters and saliency of a model for one input, and
a finished job's confusion matrix and top losses on its test split; JSON, and `.png` pictures.

The input is a dataset sample (`GET ...?dataset=&split=&index=`; by default the model's own
dataset, split as its job split it) or an uploaded image (`POST` with a `file`, as
/predict/images takes images). GET cannot carry a file, so each input view has both methods.
Every forward and backward pass, dataset load and picture runs in the API's CPU pool; model and
job lookups are the caller's (another owner's answer 404). A test split is evaluated once per
model (core/serving/inside/evaluation.py); concurrent first requests here wait for that one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile
from pydantic import BaseModel
from sqlalchemy.orm import Session

from api.auth import OwnerDep
from api.cpu_pool import CpuPool
from api.deps import MAX_OFFSET, CpuDep, DatabaseWork, DatabaseWorkDep, ServingDep, SettingsDep
from api.errors import rules
from api.openapi import binary_content
from api.params import JobId, ModelRef
from api.serving import Serving
from core.datasets.queries import check_visible_upload
from core.errors import InvalidInputError, NotFoundError
from core.jobs import queries as job_queries
from core.names import LABEL_PATTERN, NAME_PATTERN
from core.registry import queries as registry
from core.serving.inference import LoadedModel
from core.serving.inside import activations, charts, evaluation, views
from core.serving.inside.samples import (
    DatasetSplits,
    Sample,
    dataset_sample,
    uploaded_sample,
)
from core.serving.inside.schemas import (
    ConfusionOut,
    FeatureMapsOut,
    FiltersOut,
    SaliencyOut,
    Split,
    TopLossesOut,
)
from core.settings import Settings

router = APIRouter(tags=["inside"])
T = TypeVar("T")
PNG = binary_content("image/png", "A PNG picture")
DEFAULT_CHANNELS = 16
DEFAULT_TOP_LOSSES = 16
MODEL_RULES = rules(
    "the model must classify images (not rows of features, a regression or attention pooling)",
    "feature maps and filters need a conv layer",
    "`channels` at most D2L_INSIDE_MAX_CHANNELS",
    "a dataset sample's `index` must be in its split, and its samples the model's shape",
)
JOB_RULES = rules(
    "the job's model must classify (a regression has no classes)",
    "`limit` at most D2L_INSIDE_MAX_TOP_LOSSES",
)

Channels = Annotated[
    int | None,
    Query(
        ge=1,
        le=4096,
        description="Channels (kernels) shown per layer, the first ones; default 16, "
        "at most D2L_INSIDE_MAX_CHANNELS.",
    ),
]
Layer = Annotated[
    str | None,
    Query(
        pattern=r"^[A-Za-z0-9_.#]{1,200}$",
        description="Only this stage (a name the answer "
        "lists in `layers`, e.g. `3` or `b2.0.conv1`).",
    ),
]
ClassName = Annotated[
    str | None,
    Query(
        max_length=255,
        pattern=LABEL_PATTERN,
        description="Explain this class instead of the predicted one.",
    ),
]
ImageFile = Annotated[UploadFile, File(description="A PNG/JPEG image, as /predict/images.")]


@dataclass(frozen=True)
class SampleQuery:
    """Which dataset sample to look at."""

    dataset: Annotated[
        str | None,
        Query(
            pattern=NAME_PATTERN,
            description="A built-in dataset or an upload id; default: the model's.",
        ),
    ] = None
    split: Annotated[Split, Query(description="Split as the model's job split its data.")] = "test"
    index: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Position in the split.")] = 0


SampleDep = Annotated[SampleQuery, Depends()]


class Evaluations:
    """Test evaluations under way in this process, by key: a request that finds one running
    waits for it rather than starting another."""

    def __init__(self) -> None:
        self.running: dict[str, asyncio.Future[Any]] = {}

    async def once(self, key: str, start: Callable[[], Awaitable[T]]) -> T:
        task = self.running.get(key)
        if task is None:
            task = asyncio.ensure_future(start())
            self.running[key] = task
            task.add_done_callback(lambda _: self.running.pop(key, None))
        return await asyncio.shield(task)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Inside:
    """What every view here needs: the caller's models, database work, CPU pool, settings."""

    serving: Serving
    owner: str | None
    database: DatabaseWork
    cpu: CpuPool
    settings: Settings
    evaluations: Evaluations

    def channels(self, asked: int | None) -> int:
        most = self.settings.inside_max_channels
        if asked is not None and asked > most:
            raise InvalidInputError(
                f"channels: at most {most} per layer (D2L_INSIDE_MAX_CHANNELS); got {asked}"
            )
        return min(asked or DEFAULT_CHANNELS, most)

    async def dataset_input(self, ref: str, query: SampleQuery) -> tuple[str, LoadedModel, Sample]:
        """(model id, loaded model, the dataset sample `query` names)."""
        model_id, loaded = await self.serving.resolve(ref, self.owner)
        splits = await self.database(partial(model_splits, model_id=model_id, name=query.dataset))
        sample = await self.cpu.run(
            dataset_sample,
            splits,
            query.split,
            query.index,
            root=self.settings.datasets_dir,
            prep=loaded.preprocessing,
        )
        return model_id, loaded, sample

    async def uploaded_input(self, ref: str, upload: UploadFile) -> tuple[str, LoadedModel, Sample]:
        """(model id, loaded model, the uploaded image as its raw sample)."""
        model_id, loaded = await self.serving.resolve(ref, self.owner)
        data = await upload.read()
        sample = await self.cpu.run(
            uploaded_sample,
            upload.filename or "image",
            data,
            loaded,
            max_pixels=self.settings.upload_max_image_pixels,
        )
        return model_id, loaded, sample

    async def test_evaluation(self, job_id: str) -> tuple[evaluation.TestEvaluation, LoadedModel]:
        """The job's model over its test split: stored, under way, or started now."""
        model_id, splits = await self.database(partial(job_model, job_id=job_id))
        _, loaded = await self.serving.resolve(model_id, self.owner)
        most = self.settings.inside_max_test_examples
        work = partial(
            evaluation.stored_or_evaluated,
            self.serving.store,
            loaded,
            model_id=model_id,
            splits=splits,
            root=self.settings.datasets_dir,
            max_examples=most,
        )
        found = await self.evaluations.once(
            evaluation.evaluation_key(model_id, most), lambda: self.cpu.run(work)
        )
        return found, loaded


async def get_inside(
    request: Request,
    serving: ServingDep,
    owner: OwnerDep,
    database: DatabaseWorkDep,
    cpu: CpuDep,
    settings: SettingsDep,
) -> Inside:
    evaluations = request.app.state.test_evaluations
    return Inside(serving, owner, database, cpu, settings, evaluations)


InsideDep = Annotated[Inside, Depends(get_inside)]


def model_splits(session: Session, *, model_id: str, name: str | None) -> DatasetSplits:
    """The model's job's dataset settings, for its dataset or `name` (one the caller sees)."""
    model = registry.get_model_row(session, model_id=model_id)
    if name is not None:
        check_visible_upload(session, name=name)
    return DatasetSplits.of_job(model.job.params, name=name)


def job_model(session: Session, *, job_id: str) -> tuple[str, DatasetSplits]:
    """(the model a finished job registered, the job's dataset settings); 404 saying why not."""
    job = job_queries.get_job(session, job_id=job_id)
    model_id = registry.model_ids_for_jobs(session, job_ids=[job.id]).get(job.id)
    if model_id is not None:
        return model_id, DatasetSplits.of_job(job.params)
    if job.status != "succeeded":
        raise NotFoundError(
            f"job {job_id} is {job.status}: its test split is evaluated with the model it "
            "registers when it succeeds"
        )
    best = (job.result or {}).get("best_trial")
    hint = f"; ask its best trial, job {best}" if best else ""
    raise NotFoundError(f"job {job_id} ({job.kind}) has no model (none, or deleted){hint}")


def png(data: bytes) -> Response:
    return Response(content=data, media_type="image/png")


async def drawn(cpu: CpuPool, draw: Callable[[Any], bytes], answer: BaseModel) -> Response:
    return png(await cpu.run(draw, answer))


# Feature maps -----------------------------------------------------------------------------


async def feature_maps_answer(
    inside: Inside, found: tuple[str, LoadedModel, Sample], layer: str | None, channels: int | None
) -> FeatureMapsOut:
    model_id, loaded, sample = found
    return await inside.cpu.run(
        views.feature_maps_out,
        loaded,
        model_id,
        sample,
        channels=inside.channels(channels),
        max_pixels=inside.settings.inside_max_pixels,
        layer=layer,
    )


FEATURE_MAPS = "Every conv/pool stage's channels for one input (the course's view of a layer)"


@router.get(
    "/v1/models/{model_id}/feature-maps",
    summary=FEATURE_MAPS,
    operation_id="feature_maps",
    responses=MODEL_RULES,
)
async def feature_maps(
    model_id: ModelRef,
    inside: InsideDep,
    sample: SampleDep,
    layer: Layer = None,
    channels: Channels = None,
) -> FeatureMapsOut:
    """Each stage's output for a dataset sample: the first `channels` channels, each map
    average-pooled to at most D2L_INSIDE_MAX_PIXELS pixels (`pooled_by`)."""
    found = await inside.dataset_input(model_id, sample)
    return await feature_maps_answer(inside, found, layer, channels)


@router.post(
    "/v1/models/{model_id}/feature-maps",
    summary=FEATURE_MAPS + ", for an uploaded image",
    operation_id="feature_maps_of_image",
    responses=MODEL_RULES,
)
async def feature_maps_of_image(
    model_id: ModelRef,
    inside: InsideDep,
    file: ImageFile,
    layer: Layer = None,
    channels: Channels = None,
) -> FeatureMapsOut:
    found = await inside.uploaded_input(model_id, file)
    return await feature_maps_answer(inside, found, layer, channels)


@router.get(
    "/v1/models/{model_id}/feature-maps.png",
    summary=FEATURE_MAPS + ", as a picture",
    operation_id="feature_maps_png",
    response_class=Response,
    responses={**PNG, **MODEL_RULES},
)
async def feature_maps_png(
    model_id: ModelRef,
    inside: InsideDep,
    sample: SampleDep,
    layer: Layer = None,
    channels: Channels = None,
) -> Response:
    found = await inside.dataset_input(model_id, sample)
    answer = await feature_maps_answer(inside, found, layer, channels)
    return await drawn(inside.cpu, charts.feature_maps_png, answer)


@router.post(
    "/v1/models/{model_id}/feature-maps.png",
    summary=FEATURE_MAPS + ", for an uploaded image, as a picture",
    operation_id="feature_maps_of_image_png",
    response_class=Response,
    responses={**PNG, **MODEL_RULES},
)
async def feature_maps_of_image_png(
    model_id: ModelRef,
    inside: InsideDep,
    file: ImageFile,
    layer: Layer = None,
    channels: Channels = None,
) -> Response:
    found = await inside.uploaded_input(model_id, file)
    answer = await feature_maps_answer(inside, found, layer, channels)
    return await drawn(inside.cpu, charts.feature_maps_png, answer)


# Filters ----------------------------------------------------------------------------------


async def filters_answer(inside: Inside, model_ref: str, channels: int | None) -> FiltersOut:
    model_id, loaded = await inside.serving.resolve(model_ref, inside.owner)
    return await inside.cpu.run(
        activations.first_filters, loaded, model_id, channels=inside.channels(channels)
    )


@router.get(
    "/v1/models/{model_id}/filters",
    summary="The first conv layer's kernels",
    operation_id="filters",
    responses=MODEL_RULES,
)
async def filters(model_id: ModelRef, inside: InsideDep, channels: Channels = None) -> FiltersOut:
    """The first `channels` kernels (output channels) of the first conv layer, each
    in_channels x kh x kw."""
    return await filters_answer(inside, model_id, channels)


@router.get(
    "/v1/models/{model_id}/filters.png",
    summary="The first conv layer's kernels, as a picture",
    operation_id="filters_png",
    response_class=Response,
    responses={**PNG, **MODEL_RULES},
)
async def filters_png(model_id: ModelRef, inside: InsideDep, channels: Channels = None) -> Response:
    answer = await filters_answer(inside, model_id, channels)
    return await drawn(inside.cpu, charts.filters_png, answer)


# Saliency ---------------------------------------------------------------------------------


async def saliency_answer(
    inside: Inside, found: tuple[str, LoadedModel, Sample], class_name: str | None
) -> SaliencyOut:
    model_id, loaded, sample = found
    return await inside.cpu.run(views.saliency_out, loaded, model_id, sample, class_name=class_name)


SALIENCY = "Gradient saliency and Grad-CAM of the predicted (or a named) class for one input"


@router.get(
    "/v1/models/{model_id}/saliency",
    summary=SALIENCY,
    operation_id="saliency",
    responses=MODEL_RULES,
)
async def saliency(
    model_id: ModelRef, inside: InsideDep, sample: SampleDep, class_name: ClassName = None
) -> SaliencyOut:
    """`saliency`: |d score / d input| per pixel of the network's input (S x S); `grad_cam`:
    where the last conv stage saw the class, upsampled to S x S (null for a net without
    conv layers)."""
    found = await inside.dataset_input(model_id, sample)
    return await saliency_answer(inside, found, class_name)


@router.post(
    "/v1/models/{model_id}/saliency",
    summary=SALIENCY + ", for an uploaded image",
    operation_id="saliency_of_image",
    responses=MODEL_RULES,
)
async def saliency_of_image(
    model_id: ModelRef, inside: InsideDep, file: ImageFile, class_name: ClassName = None
) -> SaliencyOut:
    found = await inside.uploaded_input(model_id, file)
    return await saliency_answer(inside, found, class_name)


@router.get(
    "/v1/models/{model_id}/saliency.png",
    summary=SALIENCY + ", as a picture",
    operation_id="saliency_png",
    response_class=Response,
    responses={**PNG, **MODEL_RULES},
)
async def saliency_png(
    model_id: ModelRef, inside: InsideDep, sample: SampleDep, class_name: ClassName = None
) -> Response:
    found = await inside.dataset_input(model_id, sample)
    answer = await saliency_answer(inside, found, class_name)
    return await drawn(inside.cpu, charts.saliency_png, answer)


@router.post(
    "/v1/models/{model_id}/saliency.png",
    summary=SALIENCY + ", for an uploaded image, as a picture",
    operation_id="saliency_of_image_png",
    response_class=Response,
    responses={**PNG, **MODEL_RULES},
)
async def saliency_of_image_png(
    model_id: ModelRef, inside: InsideDep, file: ImageFile, class_name: ClassName = None
) -> Response:
    found = await inside.uploaded_input(model_id, file)
    answer = await saliency_answer(inside, found, class_name)
    return await drawn(inside.cpu, charts.saliency_png, answer)


# A job's test split -----------------------------------------------------------------------


async def confusion_answer(inside: Inside, job_id: str) -> ConfusionOut:
    found, loaded = await inside.test_evaluation(job_id)
    return await inside.cpu.run(
        evaluation.confusion, found, job_id=job_id, class_names=loaded.class_names
    )


@router.get(
    "/v1/jobs/{job_id}/confusion",
    summary="The confusion matrix of a finished job's model on its test split",
    operation_id="confusion",
    responses=JOB_RULES,
)
async def confusion(job_id: JobId, inside: InsideDep) -> ConfusionOut:
    """matrix[true][predicted] over the first D2L_INSIDE_MAX_TEST_EXAMPLES test examples
    (`cut`: there were more). Evaluated once per model, then read from the artifact store."""
    return await confusion_answer(inside, job_id)


@router.get(
    "/v1/jobs/{job_id}/confusion.png",
    summary="The confusion matrix of a finished job's model, as a picture",
    operation_id="confusion_png",
    response_class=Response,
    responses={**PNG, **JOB_RULES},
)
async def confusion_png(job_id: JobId, inside: InsideDep) -> Response:
    answer = await confusion_answer(inside, job_id)
    return await drawn(inside.cpu, charts.confusion_png, answer)


TopLimit = Annotated[
    int | None,
    Query(
        ge=1,
        le=10_000,
        description="How many examples; default 16, at most D2L_INSIDE_MAX_TOP_LOSSES.",
    ),
]


async def top_losses_answer(inside: Inside, job_id: str, limit: int | None) -> TopLossesOut:
    most = inside.settings.inside_max_top_losses
    if limit is not None and limit > most:
        raise InvalidInputError(
            f"limit: at most {most} examples (D2L_INSIDE_MAX_TOP_LOSSES); got {limit}"
        )
    found, loaded = await inside.test_evaluation(job_id)
    return await inside.cpu.run(
        evaluation.top_losses,
        found,
        job_id=job_id,
        class_names=loaded.class_names,
        root=inside.settings.datasets_dir,
        limit=min(limit or DEFAULT_TOP_LOSSES, most),
    )


@router.get(
    "/v1/jobs/{job_id}/top-losses",
    summary="The test examples a finished job's model gets most wrong",
    operation_id="top_losses",
    responses=JOB_RULES,
)
async def top_losses(job_id: JobId, inside: InsideDep, limit: TopLimit = None) -> TopLossesOut:
    """Highest cross-entropy first: each with its raw sample, label, prediction and the
    probability the model gave it, among the evaluated test examples (as `confusion`)."""
    return await top_losses_answer(inside, job_id, limit)


@router.get(
    "/v1/jobs/{job_id}/top-losses.png",
    summary="The test examples a finished job's model gets most wrong, as a picture",
    operation_id="top_losses_png",
    response_class=Response,
    responses={**PNG, **JOB_RULES},
)
async def top_losses_png(job_id: JobId, inside: InsideDep, limit: TopLimit = None) -> Response:
    answer = await top_losses_answer(inside, job_id, limit)
    return await drawn(inside.cpu, charts.top_losses_png, answer)
