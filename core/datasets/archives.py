"""Extract an uploaded .zip or .tar.gz without trusting it (zip-slip, links, devices, bombs).

Every member is checked before a byte is written: a relative path that stays inside the target,
a regular file or a folder (no symlinks, hardlinks or devices), at most `max_members` members and
`max_expanded_bytes` written in all, counted as written rather than read from the headers.
"""

from __future__ import annotations

import re
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO

from core.errors import InvalidInputError, TooLargeError

COPY_CHUNK = 1 << 20
DRIVE = re.compile(r"^[A-Za-z]:")


class UploadTooLargeError(TooLargeError):
    """An upload over a size or count limit (413: the client must send less)."""


class ArchiveError(InvalidInputError):
    """An archive member that may not be extracted; the message names it and says why."""


def member_path(name: str, target: Path) -> Path | None:
    """Where member `name` goes under `target`, or ArchiveError if it would leave it.

    None for entries that name the archive's root itself ("./")."""
    if "\x00" in name:
        raise ArchiveError(f"archive member {name!r}: a NUL byte in its name")
    posix = name.replace("\\", "/")
    if posix.startswith("/") or DRIVE.match(posix):
        raise ArchiveError(f"archive member {name!r}: absolute paths are not allowed")
    parts = [part for part in PurePosixPath(posix).parts if part not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"archive member {name!r}: '..' would leave the dataset folder")
    if not parts:
        return None
    path = target.joinpath(*parts)
    if not path.resolve().is_relative_to(target.resolve()):
        raise ArchiveError(f"archive member {name!r}: resolves outside the dataset folder")
    return path


class Budget:
    """Counts members and bytes written across one extraction, refusing past the limits."""

    def __init__(self, *, max_members: int, max_expanded_bytes: int) -> None:
        self.max_members = max_members
        self.max_expanded_bytes = max_expanded_bytes
        self.members = 0
        self.written = 0

    def count_member(self, name: str) -> None:
        self.members += 1
        if self.members > self.max_members:
            raise UploadTooLargeError(
                f"archive has more than {self.max_members} members (at {name!r})"
            )

    def copy(self, source: IO[bytes], path: Path, name: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as target:
            while chunk := source.read(COPY_CHUNK):
                self.written += len(chunk)
                if self.written > self.max_expanded_bytes:
                    raise UploadTooLargeError(
                        f"archive expands to more than {self.max_expanded_bytes} bytes "
                        f"(at {name!r})"
                    )
                target.write(chunk)


def extract_zip(archive: Path, target: Path, budget: Budget) -> None:
    try:
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                budget.count_member(info.filename)
                kind = stat.S_IFMT(info.external_attr >> 16)
                if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
                    raise ArchiveError(
                        f"archive member {info.filename!r}: links and special files are not allowed"
                    )
                path = member_path(info.filename, target)
                if path is None:
                    continue
                if info.is_dir():  # kept: an empty class folder must be seen to be refused
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                with zipped.open(info) as source:
                    budget.copy(source, path, info.filename)
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        OSError,
        NotImplementedError,
        RuntimeError,
    ) as error:
        raise ArchiveError(
            f"not a readable .zip archive (truncated or damaged?): {error}"
        ) from None


def extract_tar(archive: Path, target: Path, budget: Budget) -> None:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:  # streaming: headers are read as the archive is walked
                budget.count_member(member.name)
                if not (member.isfile() or member.isdir()):
                    raise ArchiveError(
                        f"archive member {member.name!r}: links and special files are not allowed"
                    )
                path = member_path(member.name, target)
                if path is None:
                    continue
                if member.isdir():
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                source = tar.extractfile(member)
                assert source is not None  # a regular file always has contents
                with source:
                    budget.copy(source, path, member.name)
    except (tarfile.TarError, zlib.error, EOFError, OSError) as error:
        raise ArchiveError(
            f"not a readable .tar.gz archive (truncated or damaged?): {error}"
        ) from None


def extract_archive(
    archive: Path, target: Path, *, kind: str, max_members: int, max_expanded_bytes: int
) -> None:
    """Extract `archive` ("zip" or "tar.gz") into `target`, checking every member first."""
    target.mkdir(parents=True, exist_ok=True)
    budget = Budget(max_members=max_members, max_expanded_bytes=max_expanded_bytes)
    if kind == "zip":
        extract_zip(archive, target, budget)
    else:
        extract_tar(archive, target, budget)
