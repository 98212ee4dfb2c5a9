"""Artifact storage: checkpoints written atomically, addressed by a key relative to the store.

One interface (`BaseArtifactStore`), two backends, chosen by `open_artifact_store(settings)`:

- `ArtifactStore(root)`: files under a directory (the embedded default, or a shared mount such
  as NFS). Temp file in the same directory, fsync, `os.replace`.
- `FsspecArtifactStore(url)`: objects under any fsspec URL (`s3://bucket/prefix` on AWS S3 or
  MinIO, `memory://` in tests). One `pipe_file` per artifact: S3 makes an object visible only
  when its PUT (or multipart upload) completes, so a reader never meets half an object.

Either way an artifact is durable before the database row that points at it exists, and every
read is checked against the sha256 recorded at write time. Keys are plain relative paths
(`jobs/<id>/epoch-0001.pt`): empty, absolute, `..`, `.`, empty segments and backslashes are
refused, so no key reaches outside the store's root or prefix.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from core.settings import Settings

CHECKPOINT_FORMAT = 1
PARTIAL_WRITE_AGE_S = 3600.0  # far longer than any write takes, on any machine


class ArtifactError(RuntimeError):
    """A stored artifact is missing or does not match its recorded checksum."""


@dataclass(frozen=True)
class StoredFile:
    path: str
    sha256: str
    bytes: int


def check_key(relative_path: str) -> str:
    """`relative_path` if it is a plain relative key; ArtifactError if it could leave the store."""
    parts = relative_path.split("/")
    if (
        not relative_path
        or relative_path.startswith("/")
        or "\\" in relative_path
        or "\x00" in relative_path
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise ArtifactError(
            f"artifact path {relative_path!r} leaves the artifact store "
            "(keys are relative, '/'-separated, without '.', '..' or backslashes)"
        )
    return relative_path


class BaseArtifactStore(ABC):
    """What every backend offers: atomic writes, verified reads, deletes, checkpoint payloads."""

    @property
    @abstractmethod
    def url(self) -> str:
        """Where the store lives: a directory path or an fsspec URL (`open_artifact_url` reopens
        it, e.g. in the data-parallel ranks a worker launches)."""

    @abstractmethod
    def write_bytes(self, relative_path: str, data: bytes) -> StoredFile:
        """Write `data` durably and atomically; readers see the old artifact or the new, never
        half of one."""

    @abstractmethod
    def _read(self, relative_path: str) -> bytes:
        """The stored bytes, unverified; FileNotFoundError when absent."""

    @abstractmethod
    def delete(self, relative_path: str) -> None:
        """Remove an artifact; nothing happens when it is already gone."""

    @abstractmethod
    def list_keys(self, prefix: str) -> list[str]:
        """The keys under the folder `prefix` (e.g. `logs/<job_id>`), sorted; [] when none."""

    @abstractmethod
    def stale_keys(self, prefix: str, *, older_than_s: float) -> list[str]:
        """The keys under the folder `prefix` last written more than `older_than_s` ago, sorted
        (temp files of writes under way are not keys); a key of unknown age is left out."""

    @abstractmethod
    def check(self) -> None:
        """Raise ArtifactError unless the store can be written (readiness probe): cheap, with
        no write, since probes come every few seconds."""

    def remove_partial_writes(self, *, older_than_s: float = PARTIAL_WRITE_AGE_S) -> int:
        """Delete what writes killed midway left behind; how many. Only a directory has any:
        an object store's single PUT leaves nothing half-written."""
        return 0

    def read_unchecked(self, relative_path: str) -> bytes | None:
        """An artifact that has no recorded checksum (a job's log); None when absent."""
        try:
            return self._read(check_key(relative_path))
        except FileNotFoundError:
            return None

    def read_bytes(self, relative_path: str, *, sha256: str) -> bytes:
        """The artifact's bytes, after checking them against the checksum recorded at write."""
        try:
            data = self._read(check_key(relative_path))
        except FileNotFoundError:
            raise ArtifactError(f"artifact {relative_path} is missing") from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ArtifactError(f"artifact {relative_path} does not match its sha256")
        return data

    def save_checkpoint(self, job_id: str, epoch: int, payload: dict[str, Any]) -> StoredFile:
        """Serialise a job's checkpoint dict (state_dict, optimizer, epoch, arch, config, ...)."""
        return self.save_payload(f"jobs/{job_id}/epoch-{epoch:04d}.pt", payload)

    def save_payload(self, relative_path: str, payload: dict[str, Any]) -> StoredFile:
        """Serialise a dict of tensors and plain data with torch.save, atomically."""
        buffer = io.BytesIO()
        torch.save({"format": CHECKPOINT_FORMAT, **payload}, buffer)
        return self.write_bytes(relative_path, buffer.getvalue())

    def load_checkpoint(self, relative_path: str, *, sha256: str) -> dict[str, Any]:
        """Load a verified checkpoint with `weights_only=True`: tensors and plain data only."""
        buffer = io.BytesIO(self.read_bytes(relative_path, sha256=sha256))
        payload: dict[str, Any] = torch.load(buffer, map_location="cpu", weights_only=True)
        return payload


class ArtifactStore(BaseArtifactStore):
    """Files under one root directory (the embedded default, or a shared mount)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def url(self) -> str:
        return str(self.root)

    def resolve(self, relative_path: str) -> Path:
        """The absolute path of a stored file, refusing anything outside the root (links too)."""
        path = (self.root / check_key(relative_path)).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ArtifactError(f"artifact path {relative_path!r} leaves the artifact directory")
        return path

    def write_bytes(self, relative_path: str, data: bytes) -> StoredFile:
        target = self.resolve(relative_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(data)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)
        return StoredFile(relative_path, hashlib.sha256(data).hexdigest(), len(data))

    def _read(self, relative_path: str) -> bytes:
        return self.resolve(relative_path).read_bytes()

    def delete(self, relative_path: str) -> None:
        self.resolve(relative_path).unlink(missing_ok=True)

    def check(self) -> None:
        if not self.root.is_dir() or not os.access(self.root, os.W_OK | os.X_OK):
            raise ArtifactError(f"artifact directory {self.root} is missing or not writable")

    def remove_partial_writes(self, *, older_than_s: float = PARTIAL_WRITE_AGE_S) -> int:
        """Temp files (`.<name>.<random>.tmp`) of writes whose process was killed before the
        rename; old ones only, so a write under way on another machine is left alone."""
        if not self.root.is_dir():
            return 0
        cutoff, removed = time.time() - older_than_s, 0
        for path in self.root.rglob(".*.tmp"):
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:  # another worker removed it first
                continue
        return removed

    def stale_keys(self, prefix: str, *, older_than_s: float) -> list[str]:
        cutoff = time.time() - older_than_s
        stale = []
        for key in self.list_keys(prefix):
            try:
                if self.resolve(key).stat().st_mtime < cutoff:
                    stale.append(key)
            except FileNotFoundError:  # removed meanwhile
                continue
        return stale

    def list_keys(self, prefix: str) -> list[str]:
        folder = self.resolve(prefix)
        if not folder.is_dir():
            return []
        return sorted(
            f"{prefix}/{path.relative_to(folder).as_posix()}"
            for path in folder.rglob("*")
            if path.is_file() and not path.name.startswith(".")  # not a write's temp file
        )


class FsspecArtifactStore(BaseArtifactStore):
    """Objects under an fsspec URL: `s3://bucket/prefix` (s3fs; MinIO through `endpoint_url`),
    `memory://`, or any other filesystem fsspec knows. `storage_options` go to the filesystem
    as they are (credentials, `endpoint_url`, ...)."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        import fsspec  # only the object-store deployment needs it

        self._url = url.rstrip("/")
        self.storage_options = dict(storage_options or {})
        fs, root = fsspec.core.url_to_fs(self._url, **self.storage_options)
        self.fs: AbstractFileSystem = fs
        self.prefix = root.rstrip("/")

    @property
    def url(self) -> str:
        return self._url

    def key_path(self, relative_path: str) -> str:
        """The filesystem path of a key: always under the store's prefix."""
        return f"{self.prefix}/{check_key(relative_path)}"

    def write_bytes(self, relative_path: str, data: bytes) -> StoredFile:
        # One call that either creates the whole object or nothing: a single PUT below
        # s3fs's multipart threshold, above it a multipart upload that S3 only publishes when
        # complete (and s3fs aborts on error).
        self.fs.pipe_file(self.key_path(relative_path), data)
        return StoredFile(relative_path, hashlib.sha256(data).hexdigest(), len(data))

    def _read(self, relative_path: str) -> bytes:
        data: bytes = self.fs.cat_file(self.key_path(relative_path))
        return data

    def delete(self, relative_path: str) -> None:
        try:
            self.fs.rm_file(self.key_path(relative_path))
        except FileNotFoundError:
            pass

    def check(self) -> None:
        # The first part of the path is the bucket for object stores; it must exist (the
        # service writes keys under it but never creates it).
        bucket = self.prefix.strip("/").split("/")[0]
        if self.fs.protocol in ("memory", ("memory",)) or not bucket:
            return
        self.fs.invalidate_cache(bucket)
        if not self.fs.exists(bucket):
            raise ArtifactError(f"bucket {bucket!r} of {self._url} does not exist")

    def stale_keys(self, prefix: str, *, older_than_s: float) -> list[str]:
        folder = self.key_path(prefix)
        self.fs.invalidate_cache(folder)
        cutoff = time.time() - older_than_s
        found: dict[str, dict[str, Any]] = self.fs.find(folder, detail=True)
        return sorted(
            f"{prefix}/{path.removeprefix(folder + '/')}"
            for path, info in found.items()
            if (written := _written_at(info)) is not None and written < cutoff
        )

    def list_keys(self, prefix: str) -> list[str]:
        folder = self.key_path(prefix)
        self.fs.invalidate_cache(folder)  # another process may have written since
        return sorted(
            f"{prefix}/{path.removeprefix(folder + '/')}" for path in self.fs.find(folder)
        )


def open_artifact_url(url: str, storage_options: dict[str, Any] | None = None) -> BaseArtifactStore:
    """The store at `url`: a directory path or `file://` URL gives the directory backend (atomic
    rename, fsync); any other fsspec URL the object backend."""
    if "://" not in url:
        return ArtifactStore(Path(url))
    if url.startswith("file://"):
        return ArtifactStore(Path(url.removeprefix("file://")))
    return FsspecArtifactStore(url, storage_options)


def open_artifact_store(settings: Settings) -> BaseArtifactStore:
    """The configured store: `artifact_url` when set, else the directory `artifacts`."""
    if settings.artifact_url:
        return open_artifact_url(settings.artifact_url, settings.artifact_storage_options)
    return ArtifactStore(settings.artifacts)


def _written_at(info: dict[str, Any]) -> float | None:
    """When an fsspec object was written (POSIX seconds), by the name its filesystem uses:
    `LastModified` (S3), `mtime` (local), `created` (memory); None when it gives none."""
    for name in ("LastModified", "mtime", "created"):
        value = info.get(name)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, int | float):
            return float(value)
    return None


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (POSIX needs the directory synced too)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
