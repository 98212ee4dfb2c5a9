"""Uploaded datasets: ImageFolder archives and .npz files, every refusal, and nothing left behind."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.datasets import check_available, clear_raw_cache, get_dataset, load_raw, prepare
from core.datasets.archives import UploadTooLargeError
from core.datasets.stored import read_meta, upload_dir
from core.datasets.uploads import UploadLimits, receive_upload, remove_upload
from core.errors import InvalidInputError

LIMITS = UploadLimits(
    max_bytes=10_000_000, max_members=100, max_expanded_bytes=50_000_000, max_image_pixels=1_000_000
)


def png(shape: tuple[int, ...] = (8, 8, 3), value: int = 0, seed: int | None = None) -> bytes:
    """A PNG of `shape` (H, W) grey or (H, W, 3) RGB: constant `value`, or random with `seed`."""
    pixels = (
        np.full(shape, value, dtype=np.uint8)
        if seed is None
        else np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    )
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def image_folder(
    classes: int = 2, per_class: int = 3, shape: tuple[int, ...] = (8, 8, 3)
) -> dict[str, bytes]:
    return {
        f"class_{c}/img_{i}.png": png(shape, seed=c * 100 + i)
        for c in range(classes)
        for i in range(per_class)
    }


def zip_bytes(members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name, data in members.items():
            zipped.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16  # S_IFLNK: a symlink, as `zip -y` stores it
            zipped.writestr(info, target)
    return out.getvalue()


def tar_bytes(
    members: dict[str, bytes], *, links: dict[str, tuple[bytes, str]] | None = None
) -> bytes:
    """A .tar.gz; `links` maps a member name to (tarfile type, link target)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, (kind, target) in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = target
            tar.addfile(info)
    return out.getvalue()


def npz_bytes(**arrays: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def npy_claiming(shape: tuple[int, ...], dtype: str = "|u1") -> bytes:
    """A .npy member whose header declares `shape` but which holds 64 bytes of data."""
    out = io.BytesIO()
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(out, header)
    return out.getvalue() + bytes(64)


def npz_claiming(shape: tuple[int, ...]) -> bytes:
    """An .npz (x, y) whose x declares `shape` (numpy would allocate it before reading)."""
    y = io.BytesIO()
    np.save(y, np.array([0, 1]))
    return zip_bytes({"x.npy": npy_claiming(shape), "y.npy": y.getvalue()})


def upload(root: Path, data: bytes, filename: str, **options: object):
    return receive_upload(
        io.BytesIO(data),
        filename=filename,
        root=root,
        limits=options.pop("limits", LIMITS),
        **options,
    )  # type: ignore[arg-type]


def leftovers(root: Path) -> list[str]:
    """Everything under the datasets dir except the (empty) uploads folder itself."""
    return sorted(
        str(path.relative_to(root)) for path in root.rglob("*") if path != root / "uploads"
    )


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    clear_raw_cache()


def test_an_image_folder_zip_is_stored_with_its_metadata(tmp_path: Path) -> None:
    members = image_folder(classes=3, per_class=2)
    meta = upload(tmp_path, zip_bytes(members), "pets.zip", name="pets")
    assert meta["class_names"] == ["class_0", "class_1", "class_2"]
    assert meta["raw_shape"] == [3, 8, 8] and meta["num_examples"] == 6
    assert meta["counts"] == {"class_0": 2, "class_1": 2, "class_2": 2}
    assert meta["format"] == "imagefolder" and len(meta["sha256"]) == 64
    folder = upload_dir(tmp_path, meta["id"])
    assert read_meta(tmp_path, meta["id"]) == meta
    assert (folder / "images" / "class_1" / "img_0.png").read_bytes() == members[
        "class_1/img_0.png"
    ]
    check_available(meta["id"], tmp_path)
    raw = load_raw(meta["id"], root=tmp_path)
    decoded = np.asarray(Image.open(io.BytesIO(members["class_1/img_0.png"]))).transpose(2, 0, 1)
    assert np.array_equal(raw.inputs[2].numpy(), decoded) and raw.targets.tolist() == [
        0,
        0,
        1,
        1,
        2,
        2,
    ]
    assert [p.name for p in (tmp_path / "uploads").iterdir()] == [meta["id"]]


def test_a_tar_gz_with_a_wrapping_folder_grey_images_and_mixed_sizes(tmp_path: Path) -> None:
    members = {
        "digits/zero/a.png": png((6, 6), seed=1),
        "digits/zero/b.png": png((6, 6), seed=2),
        "digits/one/c.png": png((10, 4), seed=3),  # resized to the most common size, 6x6
        "digits/one/.DS_Store": b"litter",
    }
    meta = upload(tmp_path, tar_bytes(members), "digits.tar.gz")
    assert meta["class_names"] == ["one", "zero"] and meta["raw_shape"] == [1, 6, 6]
    info = get_dataset(meta["id"], root=tmp_path)
    assert info.in_channels == 1 and info.raw_shape == (1, 6, 6) and info.source == "upload"


def test_the_size_field_sets_the_raw_size(tmp_path: Path) -> None:
    meta = upload(tmp_path, zip_bytes(image_folder()), "x.zip", size=(4, 5))
    assert meta["raw_shape"] == [3, 4, 5]


def test_an_npz_upload_trains_through_prepare(tmp_path: Path) -> None:
    x = np.random.default_rng(0).integers(0, 256, (40, 12, 12), dtype=np.uint8)
    y = np.arange(40) % 4
    meta = upload(tmp_path, npz_bytes(x=x, y=y, classes=np.array(["a", "b", "c", "d"])), "set.npz")
    assert meta["format"] == "npz" and meta["raw_shape"] == [1, 12, 12]
    assert meta["class_names"] == ["a", "b", "c", "d"] and meta["counts"]["c"] == 10
    data = prepare(
        meta["id"], root=tmp_path, input_size=28, val_fraction=0.1, test_fraction=0.2, seed=0
    )
    assert data.train.network_inputs().shape[1:] == (1, 28, 28) and len(data.test) == 8
    assert data.preprocessing.raw_shape == (1, 12, 12)


def test_npz_labels_without_class_names_are_renumbered(tmp_path: Path) -> None:
    x = np.zeros((4, 3, 5, 5), dtype=np.int64)  # integers 0-255 are accepted as pixels
    meta = upload(tmp_path, npz_bytes(x=x, y=np.array([7, 3, 7, 3])), "set.npz")
    assert meta["class_names"] == ["3", "7"] and meta["raw_shape"] == [3, 5, 5]
    assert load_raw(meta["id"], root=tmp_path).targets.tolist() == [1, 0, 1, 0]


def test_remove_upload_deletes_the_folder(tmp_path: Path) -> None:
    meta = upload(tmp_path, zip_bytes(image_folder()), "x.zip")
    remove_upload(tmp_path, meta["id"])
    assert leftovers(tmp_path) == []


def truncated_zip() -> bytes:
    return zip_bytes(image_folder())[:200]


def truncated_tar() -> bytes:
    return tar_bytes(image_folder())[:300]


class Evil:
    """Pickled, it runs code on load: what allow_pickle=False must never do."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch /tmp/d2l-pwned",))


BAD_UPLOADS = {
    "zip-slip": ("x.zip", lambda: zip_bytes({**image_folder(), "../x.png": png()}), 422, "'..'"),
    "zip-slip-nested": (
        "x.zip",
        lambda: zip_bytes({**image_folder(), "a/../../x.png": png()}),
        422,
        "'..'",
    ),
    "tar-slip": ("x.tar.gz", lambda: tar_bytes({**image_folder(), "../x.png": png()}), 422, "'..'"),
    "absolute-zip": (
        "x.zip",
        lambda: zip_bytes({**image_folder(), "/tmp/x.png": png()}),
        422,
        "absolute",
    ),
    "absolute-tar": (
        "x.tar.gz",
        lambda: tar_bytes({**image_folder(), "/tmp/x.png": png()}),
        422,
        "absolute",
    ),
    "symlink-zip": (
        "x.zip",
        lambda: zip_bytes(image_folder(), symlinks={"class_0/link.png": "/etc/passwd"}),
        422,
        "links",
    ),
    "symlink-tar": (
        "x.tar.gz",
        lambda: tar_bytes(
            image_folder(), links={"class_0/link.png": (tarfile.SYMTYPE, "/etc/passwd")}
        ),
        422,
        "links",
    ),
    "hardlink-tar": (
        "x.tar.gz",
        lambda: tar_bytes(
            image_folder(), links={"class_0/hard.png": (tarfile.LNKTYPE, "class_0/img_0.png")}
        ),
        422,
        "links",
    ),
    "device-tar": (
        "x.tar.gz",
        lambda: tar_bytes(image_folder(), links={"class_0/dev": (tarfile.CHRTYPE, "")}),
        422,
        "special",
    ),
    "truncated-zip": ("x.zip", truncated_zip, 422, "truncated"),
    "truncated-tar": ("x.tar.gz", truncated_tar, 422, "truncated"),
    "not-an-image": (
        "x.zip",
        lambda: zip_bytes({**image_folder(), "class_1/notes.txt": b"hello"}),
        422,
        "class_1/notes.txt",
    ),
    "truncated-image": (
        "x.zip",
        lambda: zip_bytes({**image_folder(), "class_1/cut.png": png(seed=9)[:60]}),
        422,
        "class_1/cut.png",
    ),
    "one-class": ("x.zip", lambda: zip_bytes(image_folder(classes=1)), 422, "at least 2 classes"),
    "empty-class": (
        "x.zip",
        lambda: zip_bytes({**image_folder(), "class_2/": b""}),
        422,
        "no images",
    ),
    "loose-file": (
        "x.zip",
        lambda: zip_bytes({**image_folder(), "stray.png": png()}),
        422,
        "not inside a class folder",
    ),
    "oversize": ("x.zip", lambda: zip_bytes(image_folder(per_class=30)), 413, "larger than"),
    "too-many-members": (
        "x.zip",
        lambda: zip_bytes(image_folder(per_class=60)),
        413,
        "more than 100 members",
    ),
    "zip-bomb": (
        "x.zip",
        lambda: zip_bytes({**image_folder(), "class_0/big.png": b"\0" * 60_000_000}),
        413,
        "expands to more than",
    ),
    "unsupported-type": ("x.rar", lambda: b"Rar!", 422, "ImageFolder"),
    "npz-object-array": (
        "x.npz",
        lambda: npz_bytes(x=np.array([{"a": 1}, None], dtype=object), y=np.array([0, 1])),
        422,
        "allow_pickle",
    ),
    "npz-is-a-pickle": ("x.npz", lambda: pickle.dumps(Evil()), 422, "not an .npz"),
    "npz-float-pixels": (
        "x.npz",
        lambda: npz_bytes(x=np.zeros((4, 5, 5), dtype=np.float32), y=np.array([0, 1, 0, 1])),
        422,
        "8-bit",
    ),
    "npz-missing-y": (
        "x.npz",
        lambda: npz_bytes(x=np.zeros((4, 5, 5), dtype=np.uint8)),
        422,
        "needs arrays ['y']",
    ),
    "npz-label-count": (
        "x.npz",
        lambda: npz_bytes(x=np.zeros((4, 5, 5), dtype=np.uint8), y=np.array([0, 1])),
        422,
        "4 integer labels",
    ),
    "npz-one-class": (
        "x.npz",
        lambda: npz_bytes(x=np.zeros((4, 5, 5), dtype=np.uint8), y=np.zeros(4, dtype=np.int64)),
        422,
        "at least 2 classes",
    ),
    "npz-class-without-examples": (
        "x.npz",
        lambda: npz_bytes(
            x=np.zeros((4, 5, 5), dtype=np.uint8),
            y=np.array([0, 1, 0, 1]),
            classes=np.array(["a", "b", "c"]),
        ),
        422,
        "'c' has no examples",
    ),
    "npz-header-declares-a-terabyte": (
        "x.npz",
        lambda: npz_claiming((10**12,)),
        422,
        "x.npy declares shape [1000000000000]",
    ),
    "npz-bad-shape": (
        "x.npz",
        lambda: npz_bytes(x=np.zeros((4, 5), dtype=np.uint8), y=np.array([0, 1, 0, 1])),
        422,
        "shaped",
    ),
}
SMALL = UploadLimits(
    max_bytes=20_000, max_members=100, max_expanded_bytes=50_000_000, max_image_pixels=1_000_000
)


@pytest.mark.parametrize("case", sorted(BAD_UPLOADS))
def test_every_bad_upload_is_refused_and_leaves_nothing(tmp_path: Path, case: str) -> None:
    filename, build, status, reason = BAD_UPLOADS[case]
    limits = SMALL if case == "oversize" else LIMITS
    with pytest.raises(InvalidInputError) as refused:
        upload(tmp_path, build(), filename, limits=limits)
    assert refused.value.status_code == status
    assert reason in str(refused.value)
    assert leftovers(tmp_path) == []
    assert not (tmp_path.parent / "x.png").exists() and not Path("/tmp/d2l-pwned").exists()


def test_too_large_is_a_413(tmp_path: Path) -> None:
    assert (
        issubclass(UploadTooLargeError, InvalidInputError)
        and UploadTooLargeError.status_code == 413
    )


def test_a_pixel_bomb_image_is_refused(tmp_path: Path) -> None:
    limits = UploadLimits(
        max_bytes=10_000_000, max_members=100, max_expanded_bytes=50_000_000, max_image_pixels=100
    )
    with pytest.raises(InvalidInputError, match=r"class_0/img_0\.png: 64x64 pixels"):
        upload(tmp_path, zip_bytes(image_folder(shape=(64, 64, 3))), "x.zip", limits=limits)
    assert leftovers(tmp_path) == []


def test_decoded_images_count_against_the_expanded_limit(tmp_path: Path) -> None:
    limits = UploadLimits(
        max_bytes=10_000_000, max_members=100, max_expanded_bytes=10_000, max_image_pixels=10**6
    )
    with pytest.raises(UploadTooLargeError, match="decoded"):
        upload(
            tmp_path,
            zip_bytes(image_folder(shape=(8, 8, 3))),
            "x.zip",
            limits=limits,
            size=(40, 40),
        )
    assert leftovers(tmp_path) == []


def test_loaded_tensors_match_what_was_uploaded(tmp_path: Path) -> None:
    x = np.random.default_rng(5).integers(0, 256, (6, 4, 4, 3), dtype=np.uint8)  # NHWC
    meta = upload(tmp_path, npz_bytes(x=x, y=np.array([0, 1, 2, 0, 1, 2])), "hwc.npz")
    assert meta["raw_shape"] == [3, 4, 4]
    assert torch.equal(
        load_raw(meta["id"], root=tmp_path).inputs, torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    )
