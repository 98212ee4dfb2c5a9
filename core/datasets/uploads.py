"""Accept an uploaded dataset: an ImageFolder archive, an .npz of `x` and `y`, or a CSV table,
all validated.

Everything happens in a staging folder inside the datasets directory and is moved into place
(`uploads/<id>/`, one rename) only once every check passed, so a refused upload leaves nothing
behind. Images are decoded once, at upload, into uint8 (N, C, H, W) at one raw size; the raw
images stay beside them; `meta.json` records what a job and a prediction need.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

from core.datasets.archives import COPY_CHUNK, UploadTooLargeError, extract_archive
from core.datasets.compact import write_compact
from core.datasets.csv_upload import Table, Task, read_csv
from core.datasets.images import ImageDecodeError, decode_image, is_grey, open_image
from core.datasets.stored import META_FILE, UPLOADS_FOLDER, upload_dir
from core.errors import InvalidInputError
from core.names import check_label

NPY_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}
FORMATS = {".zip": "zip", ".tar.gz": "tar.gz", ".tgz": "tar.gz", ".npz": "npz", ".csv": "csv"}


@dataclass(frozen=True)
class UploadLimits:
    """The settings' limits on one upload."""

    max_bytes: int
    max_members: int
    max_expanded_bytes: int
    max_image_pixels: int
    max_upscale: float = math.inf  # stored pixels / decoded pixels, for images resized to `size`


@dataclass(frozen=True)
class Examples:
    """Decoded images (N, C, H, W) uint8, labels 0..K-1, and the K class names."""

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]


def upload_format(filename: str) -> str:
    """ "zip", "tar.gz", "npz" or "csv" from the file name, or a 422 naming the accepted kinds."""
    lowered = check_label(filename, what="the file name").lower()
    for suffix, kind in FORMATS.items():
        if lowered.endswith(suffix):
            return kind
    raise InvalidInputError(
        f"{filename!r}: upload an ImageFolder .zip or .tar.gz, an .npz with x and y, or a .csv "
        "(a header, numeric feature columns and a target column)"
    )


def copy_limited(source: IO[bytes], path: Path, *, max_bytes: int) -> tuple[str, int]:
    """Copy the upload to `path` and return its sha256 and size; 413 past `max_bytes`."""
    digest, size = hashlib.sha256(), 0
    with path.open("wb") as target:
        while chunk := source.read(COPY_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise UploadTooLargeError(f"the upload is larger than {max_bytes} bytes")
            digest.update(chunk)
            target.write(chunk)
    return digest.hexdigest(), size


def visible(name: str) -> bool:
    """False for the litter archivers add (.DS_Store, ._x, __MACOSX/)."""
    return not (name.startswith(".") or name == "__MACOSX")


def class_folders(folder: Path) -> list[Path]:
    """The class folders of an ImageFolder tree, stepping into a single wrapping folder."""
    top = folder
    entries = sorted(entry for entry in folder.iterdir() if visible(entry.name))
    while len(entries) == 1 and entries[0].is_dir():
        inner = sorted(entry for entry in entries[0].iterdir() if visible(entry.name))
        if not inner or not all(entry.is_dir() for entry in inner):
            break
        entries = inner
    for entry in entries:
        if not entry.is_dir():
            raise InvalidInputError(
                f"{entry.relative_to(top)}: not inside a class folder (ImageFolder: one "
                "folder per class, images inside)"
            )
    return entries


def image_files(class_folder: Path) -> list[Path]:
    """Every file under a class folder (sub-folders too, as torchvision's ImageFolder)."""
    return sorted(
        path
        for path in class_folder.rglob("*")
        if path.is_file() and all(visible(part) for part in path.relative_to(class_folder).parts)
    )


def read_image_folder(
    folder: Path, *, size: tuple[int, int] | None, limits: UploadLimits
) -> Examples:
    """Decode every image of an ImageFolder tree at one raw size; errors name the file.

    The raw size is `size` (H, W) or the most common one; grey when every image is grey."""
    files: list[tuple[Path, int]] = []
    sizes: Counter[tuple[int, int]] = Counter()
    all_grey = True
    decoded = 0  # pixels of every image at its own size
    classes = class_folders(folder)
    for label, class_folder in enumerate(classes):
        members = image_files(class_folder)
        if not members:
            raise InvalidInputError(f"{class_folder.relative_to(folder)}: a class with no images")
        for path in members:
            try:
                image = open_image(path, max_pixels=limits.max_image_pixels)
            except ImageDecodeError as error:
                raise InvalidInputError(f"{path.relative_to(folder)}: {error}") from None
            sizes[(image.height, image.width)] += 1
            decoded += image.height * image.width
            all_grey = all_grey and is_grey(image)
            files.append((path, label))
    height, width = size or sizes.most_common(1)[0][0]
    raw_shape = (1 if all_grey else 3, height, width)
    if len(files) * int(np.prod(raw_shape)) > limits.max_expanded_bytes:
        raise UploadTooLargeError(
            f"{len(files)} images of {list(raw_shape)} are more than "
            f"{limits.max_expanded_bytes} bytes decoded (D2L_UPLOAD_MAX_EXPANDED_BYTES)"
        )
    check_upscale(len(files), (height, width), decoded=decoded, limits=limits)
    images = np.empty((len(files), *raw_shape), dtype=np.uint8)
    for index, (path, _) in enumerate(files):
        images[index] = decode_image(path, raw_shape=raw_shape).numpy()
    return Examples(
        images=images,
        labels=np.array([label for _, label in files], dtype=np.int64),
        class_names=[class_folder.name for class_folder in classes],
    )


def check_upscale(count: int, size: tuple[int, int], *, decoded: int, limits: UploadLimits) -> None:
    """413 when `size` would store the images at more than `max_upscale` times the pixels they
    have: enlarging costs storage and adds nothing a job's `input_size` would not (it resizes
    each minibatch on the device), so a thousand 1x1 PNGs never become a gigabyte on disk."""
    stored = count * size[0] * size[1]
    if stored > limits.max_upscale * decoded:
        raise UploadTooLargeError(
            f"size {size[0]}x{size[1]} would store {count} images at {stored / decoded:.0f}x "
            f"the {decoded} pixels they have; at most {limits.max_upscale:g}x is stored "
            "(D2L_UPLOAD_MAX_UPSCALE): leave size out (or give a smaller one) and set the job's "
            "model.input_size, which resizes them for the net"
        )


def as_pixels(x: np.ndarray, filename: str) -> np.ndarray:
    """`x` as uint8 (N, C, H, W): 8-bit values in (N, H, W), (N, C, H, W) or (N, H, W, C)."""
    if x.dtype.kind not in "ui":
        raise InvalidInputError(
            f"{filename}: x must hold 8-bit pixel values (uint8, or integers 0-255), not {x.dtype}"
        )
    if x.size and (x.min() < 0 or x.max() > 255):
        raise InvalidInputError(f"{filename}: x has values outside 0-255")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[1] not in (1, 3) and x.shape[3] in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    if x.ndim != 4 or x.shape[1] not in (1, 3) or min(x.shape[2:]) < 1:
        raise InvalidInputError(
            f"{filename}: x must be images shaped (N, H, W), (N, C, H, W) or (N, H, W, C) "
            f"with C 1 or 3; got {list(x.shape)}"
        )
    return np.ascontiguousarray(x, dtype=np.uint8)


def as_labels(
    y: np.ndarray, classes: np.ndarray | None, count: int, filename: str
) -> tuple[np.ndarray, list[str]]:
    """Labels 0..K-1 and class names: from `classes` when given, else the sorted values of y."""
    if y.ndim != 1 or y.dtype.kind not in "ui" or len(y) != count:
        raise InvalidInputError(
            f"{filename}: y must be {count} integer labels (one per image), got {y.dtype} "
            f"{list(y.shape)}"
        )
    if classes is None:
        values, labels = np.unique(y, return_inverse=True)
        names = [str(value) for value in values]
    else:
        if classes.ndim != 1 or classes.dtype.kind not in "US":
            raise InvalidInputError(f"{filename}: classes must be a 1-D array of strings")
        names = [str(name) for name in classes.astype(str)]
        if y.min() < 0 or y.max() >= len(names):
            raise InvalidInputError(f"{filename}: y has labels outside 0..{len(names) - 1}")
        labels = y
    used = set(np.unique(labels).tolist())
    unused = [index for index in range(len(names)) if index not in used]
    if unused:
        raise InvalidInputError(f"{filename}: class {names[unused[0]]!r} has no examples")
    return np.asarray(labels, dtype=np.int64), names


def check_npy_header(zipped: zipfile.ZipFile, member: zipfile.ZipInfo, filename: str) -> None:
    """Refuse an array whose header declares more data than its member holds: numpy allocates
    what the header says before reading, so `shape: (10**12,)` in a small file would be a
    terabyte (MemoryError) without this."""
    with zipped.open(member) as stream:
        version = np.lib.format.read_magic(stream)
        if version not in NPY_HEADER_READERS:
            raise ValueError(f"{member.filename}: .npy format {version} is not supported")
        shape, _, dtype = NPY_HEADER_READERS[version](stream)
        held = member.file_size - stream.tell()
    declared = math.prod(int(side) for side in shape) * dtype.itemsize  # Python ints: no overflow
    if declared > held:
        raise InvalidInputError(
            f"{filename}: {member.filename} declares shape {list(shape)} of {dtype} "
            f"({declared} bytes) but holds {held} bytes"
        )


def read_npz(path: Path, *, filename: str, limits: UploadLimits) -> Examples:
    """`x` and `y` (and optional `classes`) of an .npz, loaded without unpickling anything."""
    try:
        with zipfile.ZipFile(path) as zipped:
            members = zipped.infolist()
            if sum(info.file_size for info in members) > limits.max_expanded_bytes:
                raise UploadTooLargeError(
                    f"{filename}: expands to more than {limits.max_expanded_bytes} bytes"
                )
            for member in members:
                if member.filename.endswith(".npy"):
                    check_npy_header(zipped, member, filename)
    except zipfile.BadZipFile:
        raise InvalidInputError(
            f"{filename}: not an .npz archive (numpy.savez writes one)"
        ) from None
    except (ValueError, OSError, EOFError) as error:
        raise InvalidInputError(f"{filename}: unreadable array ({error})") from None
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = {"x", "y"} - set(data.files)
            if missing:
                raise InvalidInputError(
                    f"{filename}: needs arrays {sorted(missing)}; it has {sorted(data.files)}"
                )
            x, y = data["x"], data["y"]
            classes = data["classes"] if "classes" in data.files else None
    except InvalidInputError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise InvalidInputError(f"{filename}: unreadable array ({error})") from None
    images = as_pixels(x, filename)
    labels, class_names = as_labels(y, classes, len(images), filename)
    return Examples(images=images, labels=labels, class_names=class_names)


def check_classes(examples: Examples) -> None:
    """At least two classes, each with at least one example."""
    if len(examples.class_names) < 2:
        raise InvalidInputError(
            f"a dataset needs at least 2 classes; this one has {examples.class_names}"
        )


def build_meta(
    examples: Examples, *, dataset_id: str, name: str, kind: str, sha256: str, size: int
) -> dict[str, Any]:
    """What meta.json (and the datasets table) record of an upload."""
    counts = np.bincount(examples.labels, minlength=len(examples.class_names))
    return {
        "id": dataset_id,
        "name": name,
        "format": "npz" if kind == "npz" else "imagefolder",
        "sha256": sha256,
        "bytes": size,
        "class_names": examples.class_names,
        "raw_shape": list(examples.images.shape[1:]),
        "counts": {name: int(n) for name, n in zip(examples.class_names, counts, strict=True)},
        "num_examples": len(examples.labels),
        "created_at": datetime.now(UTC).isoformat(),
    }


def build_table_meta(
    table: Table, *, dataset_id: str, name: str, sha256: str, size: int
) -> dict[str, Any]:
    """What meta.json (and the datasets table) record of a CSV upload."""
    counts: dict[str, int] = {}
    if table.task == "classification":
        tally = np.bincount(table.targets, minlength=len(table.class_names))
        counts = {label: int(n) for label, n in zip(table.class_names, tally, strict=True)}
    return {
        "id": dataset_id,
        "name": name,
        "format": "csv",
        "task": table.task,
        "features": table.feature_names,
        "target": table.target,
        "sha256": sha256,
        "bytes": size,
        "class_names": table.class_names,
        "raw_shape": [len(table.feature_names)],
        "counts": counts,
        "num_examples": len(table.targets),
        "created_at": datetime.now(UTC).isoformat(),
    }


def receive_upload(
    source: IO[bytes],
    *,
    filename: str,
    root: Path,
    limits: UploadLimits,
    size: tuple[int, int] | None = None,
    name: str | None = None,
    target: str | None = None,
    task: Task = "auto",
    check_room: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Validate and store an upload under `root/uploads/<new id>`; returns its metadata.

    `size` applies to images; `target` (the label column, default the last) and `task` to a
    CSV. `check_room` is told the bytes about to be stored, before they are written, and may
    refuse them (an owner's storage quota). Nothing is left behind when any check fails (the
    staging folder is removed)."""
    kind = upload_format(filename)
    if kind != "csv" and (target is not None or task != "auto"):
        raise InvalidInputError("target and task apply to CSV uploads only; remove them")
    if kind == "csv" and size is not None:
        raise InvalidInputError("size applies to images only; remove it for a CSV upload")
    uploads = root / UPLOADS_FOLDER
    uploads.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=uploads))
    try:
        received = staging / f"upload.{kind}"
        sha256, byte_count = copy_limited(source, received, max_bytes=limits.max_bytes)
        dataset_id, label = uuid.uuid4().hex, name or filename
        if kind == "csv":
            table = read_csv(
                received,
                filename=filename,
                target=target,
                task=task,
                max_values=limits.max_expanded_bytes // 4,  # float32 values
            )
            meta = build_table_meta(
                table, dataset_id=dataset_id, name=label, sha256=sha256, size=byte_count
            )
            x, y = table.features, table.targets
        else:
            examples = read_examples(
                received, kind=kind, filename=filename, size=size, limits=limits
            )
            meta = build_meta(
                examples,
                dataset_id=dataset_id,
                name=label,
                kind=kind,
                sha256=sha256,
                size=byte_count,
            )
            x, y = examples.images, examples.labels
        received.unlink()
        if check_room is not None:
            check_room(x.nbytes + y.nbytes)
        write_compact(staging, x, y)  # memory-mappable: jobs never read it whole
        (staging / META_FILE).write_text(json.dumps(meta, indent=2))
        os.replace(staging, uploads / meta["id"])  # one rename: all of it appears at once
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return meta


def read_examples(
    received: Path, *, kind: str, filename: str, size: tuple[int, int] | None, limits: UploadLimits
) -> Examples:
    """The labelled images of an .npz or an ImageFolder archive, checked."""
    if kind == "npz":
        examples = read_npz(received, filename=filename, limits=limits)
    else:
        folder = received.with_name("images")
        extract_archive(
            received,
            folder,
            kind=kind,
            max_members=limits.max_members,
            max_expanded_bytes=limits.max_expanded_bytes,
        )
        examples = read_image_folder(folder, size=size, limits=limits)
    check_classes(examples)
    return examples


def remove_upload(root: Path, dataset_id: str) -> None:
    """Delete an upload's folder: renamed aside first, so readers never see half of it."""
    folder = upload_dir(root, dataset_id)
    if not folder.exists():
        return
    doomed = folder.with_name(f".deleting-{dataset_id}-{uuid.uuid4().hex[:8]}")
    os.replace(folder, doomed)
    shutil.rmtree(doomed, ignore_errors=True)
