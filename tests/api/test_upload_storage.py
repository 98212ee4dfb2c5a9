"""What an upload may store: images are not enlarged past D2L_UPLOAD_MAX_UPSCALE, and an
owner's uploaded datasets and weights stay within D2L_STORAGE_QUOTA_BYTES (413, with what is
used, the quota and how to free space); deleting frees it."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from fastapi.testclient import TestClient

import models
from api.app import create_app
from core.settings import Settings
from tests.conftest import RecordingQueue
from tests.core.datasets.test_uploads import image_folder, npz_bytes, zip_bytes
from tests.factories import migrated

DIGITS = 100  # 8x8 grey images: stored as 100 x (64 pixels + an 8-byte label) = 7,200 bytes
DIGITS_BYTES = DIGITS * (64 + 8)


def digits_npz(seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (DIGITS, 8, 8), dtype=np.uint8)
    return npz_bytes(x=x, y=np.arange(DIGITS) % 2)


def lenet_pt() -> bytes:
    net = models.get_model("lenet", in_channels=1, num_classes=10, activation="relu")
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    return buffer.getvalue()


def upload_dataset(client: TestClient, data: bytes, filename: str, **form: str) -> Any:
    return client.post("/v1/datasets", files={"file": (filename, data)}, data=form)


def upload_weights(client: TestClient) -> Any:
    return client.post(
        "/v1/checkpoints",
        files={"file": ("lenet.pt", lenet_pt())},
        data={"arch": "lenet", "config": '{"activation": "relu"}'},
    )


def stored_uploads(settings: Settings) -> list[Path]:
    return sorted((settings.datasets_dir / "uploads").iterdir())


def test_tiny_images_are_not_stored_enlarged_past_the_upscale_limit(
    client: TestClient, settings: Settings
) -> None:
    """Eight 1x1 PNGs at size=64 would be 4,096x their pixels; 8x8 ones at 16x16 are 4x."""
    tiny = zip_bytes(image_folder(classes=2, per_class=4, shape=(1, 1)))
    refused = upload_dataset(client, tiny, "tiny.zip", size="64")
    assert refused.status_code == 413, refused.text
    detail = refused.json()["detail"]
    assert "4096x" in detail and "at most 16x" in detail and "D2L_UPLOAD_MAX_UPSCALE" in detail
    assert "input_size" in detail  # what to do instead
    assert stored_uploads(settings) == []  # nothing written
    small = zip_bytes(image_folder(classes=2, per_class=4, shape=(8, 8)))
    accepted = upload_dataset(client, small, "small.zip", size="16")
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["raw_shape"] == [1, 16, 16]
    assert upload_dataset(client, tiny, "tiny.zip").json()["raw_shape"] == [1, 1, 1]


@contextmanager
def service(tmp_path: Path, **overrides: Any) -> Iterator[tuple[TestClient, Settings]]:
    """An app on its own data dir with these settings; jobs are recorded, not sent."""
    settings = Settings(data_dir=tmp_path / "data", **overrides)
    db = migrated(settings)
    app = create_app(settings)
    app.state.job_queue = RecordingQueue()
    with TestClient(app) as client:
        yield client, settings
    db.engine.dispose()


def test_a_dataset_past_the_owners_quota_is_a_413_until_space_is_freed(tmp_path: Path) -> None:
    quota = DIGITS_BYTES + 1000  # room for one dataset, not two
    with service(tmp_path, storage_quota_bytes=quota) as (client, settings):
        first = upload_dataset(client, digits_npz(0), "a.npz")
        assert first.status_code == 201, first.text
        refused = upload_dataset(client, digits_npz(1), "b.npz")
        assert refused.status_code == 413, refused.text
        detail = refused.json()["detail"]
        assert f"stores {DIGITS_BYTES} bytes" in detail and f"needs {DIGITS_BYTES} more" in detail
        assert f"quota of {quota} bytes (D2L_STORAGE_QUOTA_BYTES)" in detail
        assert "DELETE /v1/datasets/{id}" in detail
        assert len(stored_uploads(settings)) == 1  # the refused upload left nothing
        assert client.delete(f"/v1/datasets/{first.json()['id']}").status_code == 204
        assert upload_dataset(client, digits_npz(1), "b.npz").status_code == 201


def test_uploaded_weights_count_against_the_quota_and_deleting_them_frees_it(
    tmp_path: Path,
) -> None:
    with service(tmp_path / "probe") as (probe, _):
        weights_bytes = upload_weights(probe).json()["bytes"]
    with service(tmp_path, storage_quota_bytes=weights_bytes + 1000) as (client, settings):
        weights = upload_weights(client)
        assert weights.status_code == 201, weights.text
        again = upload_weights(client)
        assert again.status_code == 413 and "DELETE /v1/checkpoints/{id}" in again.text
        refused = upload_dataset(client, digits_npz(), "a.npz")
        assert refused.status_code == 413
        assert f"stores {weights_bytes} bytes" in refused.json()["detail"]
        weights_id = weights.json()["id"]
        finetune = {
            "kind": "finetune",
            "model": {"arch": "lenet", "config": {"activation": "relu"}},
            "dataset": {"name": "digits"},
            "finetune": {"source": {"checkpoint_id": weights_id}},
        }
        job = client.post("/v1/jobs", json=finetune)
        assert job.status_code == 202, job.text
        in_use = client.delete(f"/v1/checkpoints/{weights_id}")
        assert in_use.status_code == 409 and job.json()["id"] in in_use.json()["detail"]
        assert client.post(f"/v1/jobs/{job.json()['id']}/cancel").status_code == 202
        assert client.delete(f"/v1/checkpoints/{weights_id}").status_code == 204
        assert client.get(f"/v1/checkpoints/{weights_id}").status_code == 404
        assert not list(settings.artifacts.glob("uploads/*.pt"))  # the file is gone too
        assert upload_dataset(client, digits_npz(), "a.npz").status_code == 201
