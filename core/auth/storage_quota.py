"""Per-owner storage: the bytes of uploaded datasets and weights an owner keeps, against
D2L_STORAGE_QUOTA_BYTES.

Counted from the database rows, so the bound holds across API processes and machines: a
weights row records the bytes stored; a dataset row its shape and size, from which the arrays
stored for it (`data.npz`: uint8 images or float32 features, int64 labels) follow. Two uploads
racing may each pass the check and overshoot by one upload: a bound against filling the disk,
not an invoice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import QueryableAttribute, Session

from core.errors import StorageQuotaError
from core.settings import Settings
from core.tables import Dataset, UploadedWeights

LABEL_BYTES = 8  # int64 class labels (a regression's float32 values take less)
FREE_SPACE = (
    "delete what is no longer needed: DELETE /v1/datasets/{id} (GET /v1/datasets lists them) "
    "or DELETE /v1/checkpoints/{id}"
)


def dataset_bytes(*, data_format: str, raw_shape: Sequence[int], num_examples: int) -> int:
    """The bytes an upload's arrays take on disk: one value per raw element (a byte per image
    pixel, four per CSV feature) and a label, per example."""
    value_bytes = 4 if data_format == "csv" else 1
    return num_examples * (math.prod(raw_shape) * value_bytes + LABEL_BYTES)


def _owned_by(
    owner_column: QueryableAttribute[str | None], owner: str | None
) -> ColumnElement[bool]:
    return owner_column.is_(None) if owner is None else owner_column == owner


def stored_bytes(session: Session, *, owner: str | None) -> int:
    """Bytes of every dataset and state_dict `owner` uploaded (with auth off: all of them)."""
    datasets = session.execute(
        select(Dataset.format, Dataset.raw_shape, Dataset.num_examples).where(
            _owned_by(Dataset.owner, owner)
        )
    ).all()
    weights = session.scalar(
        select(func.coalesce(func.sum(UploadedWeights.bytes), 0)).where(
            _owned_by(UploadedWeights.owner, owner)
        )
    )
    return int(weights or 0) + sum(
        dataset_bytes(data_format=fmt, raw_shape=shape, num_examples=count)
        for fmt, shape, count in datasets
    )


@dataclass(frozen=True)
class StorageQuota:
    """What an owner stores now, and the most they may (0: no bound)."""

    owner: str | None
    used: int
    limit: int

    def check(self, adding: int) -> None:
        """StorageQuotaError (413) when `adding` more bytes would pass the quota."""
        if not self.limit or self.used + adding <= self.limit:
            return
        who = f"owner {self.owner!r}" if self.owner is not None else "this service"
        raise StorageQuotaError(
            f"{who} stores {self.used} bytes of uploaded datasets and weights; this upload needs "
            f"{adding} more, past the quota of {self.limit} bytes (D2L_STORAGE_QUOTA_BYTES): "
            + FREE_SPACE
        )

    def check_not_full(self) -> None:
        """Refuse at once, before an upload is even received, when nothing more fits."""
        self.check(adding=1)


def storage_quota(session: Session, *, owner: str | None, settings: Settings) -> StorageQuota:
    """`owner`'s quota and use; no database query when there is no quota."""
    limit = settings.storage_quota_bytes
    used = stored_bytes(session, owner=owner) if limit else 0
    return StorageQuota(owner=owner, used=used, limit=limit)
