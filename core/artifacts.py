"""Artifact storage: checkpoints written atomically, addressed by a path relative to the root.

A checkpoint is durable before the database row that points at it exists: temp file in the same
directory, fsync, `os.replace`, then the sha256 that every load verifies.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_FORMAT = 1


class ArtifactError(RuntimeError):
    """A stored artifact is missing or does not match its recorded checksum."""


@dataclass(frozen=True)
class StoredFile:
    path: str
    sha256: str
    bytes: int


class ArtifactStore:
    """Files under one root directory (the embedded default, or a shared mount)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def resolve(self, relative_path: str) -> Path:
        """The absolute path of a stored file, refusing anything outside the root."""
        path = (self.root / relative_path).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ArtifactError(f"artifact path {relative_path!r} leaves the artifact directory")
        return path

    def write_bytes(self, relative_path: str, data: bytes) -> StoredFile:
        """Write `data` durably and atomically; readers see the old file or the new, never half."""
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

    def read_bytes(self, relative_path: str, *, sha256: str) -> bytes:
        """The file's bytes, after checking them against the checksum recorded at write time."""
        path = self.resolve(relative_path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ArtifactError(f"artifact {relative_path} is missing") from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ArtifactError(f"artifact {relative_path} does not match its sha256")
        return data

    def delete(self, relative_path: str) -> None:
        self.resolve(relative_path).unlink(missing_ok=True)

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


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (POSIX needs the directory synced too)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
