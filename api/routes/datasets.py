"""Datasets: the built-in ones (with whether their files are there) and uploaded ones."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Response, UploadFile, status

from api.auth import OwnerDep
from api.deps import SessionDep, SessionRoute, SettingsDep
from api.errors import rules
from api.params import DatasetId
from core.auth.storage_quota import storage_quota
from core.datasets import clear_raw_cache, missing_files
from core.datasets import get_dataset as dataset_info
from core.datasets import list_datasets as builtin_names
from core.datasets import queries as dataset_queries
from core.datasets.schemas import DatasetOut
from core.datasets.stored import META_FILE, read_meta, upload_dir
from core.datasets.uploads import UploadLimits, receive_upload, remove_upload
from core.errors import ConflictError, InvalidInputError
from core.names import LABEL_PATTERN
from core.settings import Settings
from core.tables import Dataset

router = APIRouter(prefix="/v1/datasets", tags=["datasets"], route_class=SessionRoute)
MAX_RAW_SIDE = 1024
SIDE = r"(?:[1-9][0-9]{0,2}|10[01][0-9]|102[0-4])"  # 1-1024
SIZE_PATTERN = rf"^{SIDE}(?:[xX]{SIDE})?$"


def builtin_out(name: str, settings: Settings) -> DatasetOut:
    info = dataset_info(name)
    missing = missing_files(info, settings.datasets_dir)
    return DatasetOut(
        id=info.name,
        name=info.name,
        source=info.source,  # type: ignore[arg-type]
        description=info.description,
        raw_shape=list(info.raw_shape),
        in_channels=info.in_channels,
        task=info.task,  # type: ignore[arg-type]
        class_names=list(info.class_names),
        available=not missing,
        missing_files=[str(path) for path in missing],
        download=bool(missing) and settings.download_datasets and info.fetch is not None,
    )


def upload_out(row: Dataset, settings: Settings) -> DatasetOut:
    meta_path = upload_dir(settings.datasets_dir, row.id) / META_FILE
    table = row.format == "csv"
    meta = read_meta(settings.datasets_dir, row.id) if table and meta_path.exists() else {}
    return DatasetOut(
        id=row.id,
        name=row.name,
        source="upload",
        description=f"uploaded {row.format} dataset",
        raw_shape=list(row.raw_shape),
        in_channels=1 if table else row.raw_shape[0],
        task=meta.get("task", "classification"),
        class_names=list(row.class_names),
        features=meta.get("features"),
        target=meta.get("target"),
        available=meta_path.exists(),
        format=row.format,
        sha256=row.sha256,
        bytes=row.bytes,
        counts=dict(row.counts),
        num_examples=row.num_examples,
        created_at=row.created_at,
    )


def parse_size(size: str | None) -> tuple[int, int] | None:
    """ "32" or "28x32" (height x width) -> (H, W), each 1-1024."""
    if size is None or not size.strip():
        return None
    try:
        sides = tuple(int(side) for side in size.lower().split("x"))
    except ValueError:
        sides = ()
    if len(sides) == 1:
        sides = (sides[0], sides[0])
    if len(sides) != 2 or not all(1 <= side <= MAX_RAW_SIDE for side in sides):
        raise InvalidInputError(f"size must be N or HxW with sides 1-{MAX_RAW_SIDE}, got {size!r}")
    return sides[0], sides[1]


def upload_limits(settings: Settings) -> UploadLimits:
    return UploadLimits(
        max_bytes=settings.upload_max_bytes,
        max_members=settings.upload_max_members,
        max_expanded_bytes=settings.upload_max_expanded_bytes,
        max_image_pixels=settings.upload_max_image_pixels,
        max_upscale=settings.upload_max_upscale,
    )


@router.get("", summary="Built-in and uploaded datasets, and whether each is there to train on")
def list_datasets(session: SessionDep, settings: SettingsDep) -> list[DatasetOut]:
    builtins = [builtin_out(name, settings) for name in builtin_names()]
    uploads = [upload_out(row, settings) for row in dataset_queries.list_dataset_rows(session)]
    return builtins + uploads


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Upload an ImageFolder archive (.zip, .tar.gz), an .npz of x and y, or a CSV table",
    responses={
        413: {"description": "Over a size limit"},
        **rules(
            "the file is not a readable archive, .npz or CSV of that kind (`detail` names the "
            "file or member)",
            "fewer than 2 classes, or a class without examples",
            "target and task are for CSV uploads, size for images",
        ),
    },
)
def upload_dataset(
    session: SessionDep,
    settings: SettingsDep,
    owner: OwnerDep,
    file: Annotated[
        UploadFile,
        File(description="ImageFolder .zip/.tar.gz, .npz (x, y), or .csv (header + numbers)"),
    ],
    name: Annotated[str | None, Form(max_length=255, pattern=LABEL_PATTERN)] = None,
    size: Annotated[
        str | None,
        Form(
            pattern=SIZE_PATTERN,
            description="Raw size images are decoded to: N or HxW, sides 1-1024 (default: the "
            "most common size)",
        ),
    ] = None,
    target: Annotated[
        str | None,
        Form(
            max_length=255,
            pattern=LABEL_PATTERN,
            description="CSV only: the target column (default: the last)",
        ),
    ] = None,
    task: Annotated[
        Literal["auto", "classification", "regression"],
        Form(
            description="CSV only: what the target is; auto: text labels or at most 20 whole "
            "numbers classify, other numbers are a regression"
        ),
    ] = "auto",
) -> DatasetOut:
    """Validated before it is accepted; a refused upload leaves no file behind. The answer's
    `id` is what a job names in `dataset.name`. What an owner stores is bounded by
    D2L_STORAGE_QUOTA_BYTES (413 beyond, before anything is written)."""
    root = settings.datasets_dir
    quota = storage_quota(session, owner=owner, settings=settings)
    quota.check_not_full()
    meta = receive_upload(
        file.file,
        filename=file.filename or "upload",
        root=root,
        limits=upload_limits(settings),
        size=parse_size(size),
        name=name,
        target=target,
        task=task,
        check_room=quota.check,
    )
    try:
        row = dataset_queries.create_dataset(session, meta=meta, owner=owner)
        session.commit()
    except BaseException:
        remove_upload(root, meta["id"])
        raise
    return upload_out(row, settings)


@router.get("/{dataset_id}", summary="One dataset: built-in name or upload id")
def get_dataset(dataset_id: DatasetId, session: SessionDep, settings: SettingsDep) -> DatasetOut:
    if dataset_id in builtin_names():
        return builtin_out(dataset_id, settings)
    return upload_out(dataset_queries.get_dataset_row(session, dataset_id=dataset_id), settings)


@router.delete(
    "/{dataset_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an uploaded dataset (409 while a queued or running job uses it)",
)
def delete_dataset(dataset_id: DatasetId, session: SessionDep, settings: SettingsDep) -> Response:
    if dataset_id in builtin_names():
        raise ConflictError(f"{dataset_id!r} is built in; only uploaded datasets can be deleted")
    row = dataset_queries.get_dataset_row(session, dataset_id=dataset_id)
    jobs = dataset_queries.active_jobs_using(session, dataset_name=dataset_id)
    if jobs:
        raise ConflictError(
            f"dataset {dataset_id!r} is used by queued or running job(s) {', '.join(jobs)}; "
            "cancel them or wait for them to finish"
        )
    dataset_queries.delete_dataset_row(session, dataset=row)
    session.commit()
    remove_upload(settings.datasets_dir, dataset_id)
    clear_raw_cache()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
