"""Whether a named dataset can be loaded from the datasets directory, checked at submission.

A job whose data are absent is refused before it is queued, with the exact files to put where,
instead of failing later in a worker.
"""

from __future__ import annotations

from pathlib import Path

from core.datasets.info import DatasetInfo, UnknownDatasetError
from core.datasets.registry import get_dataset, missing_files
from core.errors import InvalidInputError


def missing_message(info: DatasetInfo, root: Path, missing: list[Path]) -> str:
    """Which files to place where, in torchvision's layout under the datasets directory."""
    hint = " (each may also be its .gz, as the mirrors serve it)" if info.accepts_gzip else ""
    listed = ", ".join(str(path) for path in missing)
    return (
        f"dataset {info.name!r} is not in the datasets directory {root}: put these files "
        f"there{hint}: {listed}; or set D2L_DOWNLOAD_DATASETS=true to let the service "
        "download it"
    )


def check_available(name: str, root: Path, *, download: bool = False) -> None:
    """Raise InvalidInputError (422) unless `name` can be loaded from `root`.

    With `download` on, absent files of a downloadable dataset are fine: they will be fetched."""
    try:
        info = get_dataset(name, root=root)
    except UnknownDatasetError as error:
        raise InvalidInputError(str(error)) from None
    missing = missing_files(info, root)
    if missing and not (download and info.fetch is not None):
        raise InvalidInputError(missing_message(info, root, missing))


def fetch_if_missing(name: str, root: Path) -> None:
    """Download `name` into `root` when its files are absent (only when the setting allows)."""
    info = get_dataset(name, root=root)
    if info.fetch is not None and missing_files(info, root):
        root.mkdir(parents=True, exist_ok=True)
        info.fetch(root)
