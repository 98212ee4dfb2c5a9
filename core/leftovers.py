"""What a process killed midway leaves behind, swept when a worker (or, for uploads, the API)
starts.

- temp files of artifact writes (`.<name>.<random>.tmp`) a killed worker never renamed;
- upload folders: an API killed mid-upload leaves `uploads/.staging-*`, one killed mid-delete
  `uploads/.deleting-*`, one killed between the upload's rename and its row `uploads/<id>`;
- stored files no row points at: an uploaded state_dict whose row was never written (a 500
  after the file was stored), a checkpoint whose worker died between the file and the row.

Only what is older than `D2L_LEFTOVER_AGE_S` goes: a write under way on another machine that
shares the store or the data directory is younger, and is left alone.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy import select

from core.artifacts import BaseArtifactStore
from core.datasets import is_upload_id
from core.datasets.stored import UPLOADS_FOLDER
from core.db import Database
from core.tables import Checkpoint, Dataset, UploadedWeights

log = logging.getLogger(__name__)
# Stored files that a row names (checkpoint epochs, uploaded state_dicts), as their keys read.
RECORDED_FILES = re.compile(r"^(jobs/[0-9a-f]+/epoch-\d+|uploads/[0-9a-f]+)\.pt$")
UNFINISHED_UPLOAD = (".staging-", ".deleting-")  # an upload's folder before its rename, or after
BATCH = 500
T = TypeVar("T")


@dataclass(frozen=True)
class Swept:
    """How many leftovers of each kind a sweep removed."""

    temp_files: int = 0
    upload_folders: int = 0
    unrecorded_files: int = 0

    @property
    def total(self) -> int:
        return self.temp_files + self.upload_folders + self.unrecorded_files


def batched(items: Sequence[T], size: int = BATCH) -> list[Sequence[T]]:
    """`items` in slices of `size` (one IN (...) query each)."""
    return [items[start : start + size] for start in range(0, len(items), size)]


def newest_write(folder: Path) -> float:
    """The latest mtime of `folder` and everything in it: an upload under way keeps writing."""
    newest = folder.stat().st_mtime
    for path in folder.rglob("*"):
        try:
            newest = max(newest, path.lstat().st_mtime)
        except FileNotFoundError:
            continue
    return newest


def remove_unfinished_uploads(datasets_dir: Path, *, older_than_s: float) -> int:
    """Staging and deleting folders of uploads (no database needed: the API runs it too)."""
    uploads = datasets_dir / UPLOADS_FOLDER
    if not uploads.is_dir():
        return 0
    cutoff, removed = time.time() - older_than_s, 0
    for folder in uploads.iterdir():
        try:
            if folder.name.startswith(UNFINISHED_UPLOAD) and newest_write(folder) < cutoff:
                shutil.rmtree(folder)
                removed += 1
        except FileNotFoundError:  # another process removed it first
            continue
    return removed


def remove_unrecorded_uploads(db: Database, datasets_dir: Path, *, older_than_s: float) -> int:
    """Upload folders (`uploads/<id>`) with no dataset row: the row's commit never came. A
    folder's own mtime is its last write: it appears whole, by one rename."""
    uploads = datasets_dir / UPLOADS_FOLDER
    if not uploads.is_dir():
        return 0
    cutoff, removed = time.time() - older_than_s, 0
    for batch in batched([f for f in uploads.iterdir() if is_upload_id(f.name)]):
        with db.sessions() as session:
            ids = [folder.name for folder in batch]
            known = set(session.scalars(select(Dataset.id).where(Dataset.id.in_(ids))))
        for folder in batch:
            try:
                if folder.name not in known and folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder)
                    removed += 1
            except FileNotFoundError:
                continue
    return removed


def remove_unrecorded_files(db: Database, store: BaseArtifactStore, *, older_than_s: float) -> int:
    """Checkpoint and uploaded-weights files that no row points at."""
    keys = [
        key
        for prefix in ("jobs", "uploads")
        for key in store.stale_keys(prefix, older_than_s=older_than_s)
        if RECORDED_FILES.match(key)
    ]
    removed = 0
    for batch in batched(keys):
        with db.sessions() as session:
            known = set(session.scalars(select(Checkpoint.path).where(Checkpoint.path.in_(batch))))
            weights = select(UploadedWeights.path).where(UploadedWeights.path.in_(batch))
            known |= set(session.scalars(weights))
        for key in batch:
            if key not in known:
                store.delete(key)
                removed += 1
    return removed


def sweep_leftovers(
    db: Database, store: BaseArtifactStore, datasets_dir: Path, *, older_than_s: float
) -> Swept:
    """Everything above; how many of each kind went."""
    swept = Swept(
        temp_files=store.remove_partial_writes(older_than_s=older_than_s),
        upload_folders=remove_unfinished_uploads(datasets_dir, older_than_s=older_than_s)
        + remove_unrecorded_uploads(db, datasets_dir, older_than_s=older_than_s),
        unrecorded_files=remove_unrecorded_files(db, store, older_than_s=older_than_s),
    )
    if swept.total:
        log.info(
            "removed leftovers of killed processes: %d temp files, %d upload folders, "
            "%d files no row points at",
            swept.temp_files,
            swept.upload_folders,
            swept.unrecorded_files,
        )
    return swept
