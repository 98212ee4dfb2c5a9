"""What killed processes leave behind is swept at start: only when old, and only when no row
points at it."""

from __future__ import annotations

import io
import os
import time
import uuid
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from api.app import create_app
from core.artifacts import ArtifactStore
from core.db import Database
from core.jobs import queries
from core.leftovers import sweep_leftovers
from core.settings import Settings
from models import get_model
from tests.factories import add_job

HOUR_S = 3600.0


def age(path: Path, seconds: float = 2 * HOUR_S) -> None:
    """Make `path` (and all in it) look written `seconds` ago."""
    then = time.time() - seconds
    for each in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(each, (then, then))


def new_id() -> str:
    return uuid.uuid4().hex


def test_old_leftovers_go_and_everything_else_stays(
    settings: Settings, sqlite_db: Database, store: ArtifactStore
) -> None:
    with sqlite_db.transaction() as session:
        job_id = add_job(session).id
    recorded = store.write_bytes(f"jobs/{job_id}/epoch-0001.pt", b"kept")
    orphan = store.write_bytes(f"jobs/{job_id}/epoch-0002.pt", b"its worker died before the row")
    young = store.write_bytes(f"jobs/{job_id}/epoch-0003.pt", b"a write under way elsewhere")
    weights = store.write_bytes(f"uploads/{new_id()}.pt", b"a 500 after the file was stored")
    with sqlite_db.transaction() as session:
        queries.add_checkpoint(session, job_id=job_id, epoch=1, stored=recorded)
    temp = store.root / "jobs" / job_id / ".epoch-0004.pt.abc123.tmp"
    temp.write_bytes(b"half a checkpoint")
    uploads = settings.datasets_dir / "uploads"
    staging, busy = uploads / ".staging-killed", uploads / ".staging-busy"
    unrecorded_upload = uploads / new_id()
    for folder in (staging, busy, unrecorded_upload):
        folder.mkdir(parents=True)
        (folder / "data.npz").write_bytes(b"x")
    for path in (temp, staging, busy, unrecorded_upload):
        age(path)
    for key in (recorded, orphan, weights):
        age(store.root / key.path)
    (busy / "more.bin").write_bytes(b"an upload still arriving")  # its newest write is young

    swept = sweep_leftovers(sqlite_db, store, settings.datasets_dir, older_than_s=HOUR_S)

    assert (swept.temp_files, swept.upload_folders, swept.unrecorded_files) == (1, 2, 2)
    assert store.list_keys("jobs") == [recorded.path, young.path]
    assert store.list_keys("uploads") == []
    assert sorted(p.name for p in uploads.iterdir()) == [".staging-busy"]


def test_a_state_dict_whose_row_fails_is_removed_at_once(
    settings: Settings, sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """POST /v1/checkpoints answers 500 after the file was stored: the handler removes the file
    itself (a process killed at that moment leaves one for the sweep: test above); an upload
    that worked keeps its file, also through a sweep."""
    net = get_model("mlp", in_channels=1, num_classes=10, input_size=8, hidden_sizes=[4])
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    form = {"arch": "mlp", "config": '{"hidden_sizes": [4]}', "input_size": "8"}
    files = {"file": ("w.pt", buffer.getvalue(), "application/octet-stream")}
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        kept = client.post("/v1/checkpoints", data=form, files=files)
        assert kept.status_code == 201, kept.text

        def database_gone(*_: object, **__: object) -> None:
            raise RuntimeError("the database went away")

        monkeypatch.setattr("core.registry.queries.add_uploaded_weights", database_gone)
        assert client.post("/v1/checkpoints", data=form, files=files).status_code == 500
    store = ArtifactStore(settings.artifacts)
    assert store.list_keys("uploads") == [f"uploads/{kept.json()['id']}.pt"]
    for key in store.list_keys("uploads"):
        age(store.root / key)
    swept = sweep_leftovers(sqlite_db, store, settings.datasets_dir, older_than_s=HOUR_S)
    assert swept.unrecorded_files == 0
    assert store.list_keys("uploads") == [f"uploads/{kept.json()['id']}.pt"]


def test_the_api_removes_old_upload_staging_folders_when_it_starts(settings: Settings) -> None:
    uploads = settings.datasets_dir / "uploads"
    old, young = uploads / ".staging-old", uploads / ".staging-young"
    for folder in (old, young):
        folder.mkdir(parents=True)
        (folder / "upload.zip").write_bytes(b"part of an archive")
    age(old)
    create_app(settings)
    assert sorted(p.name for p in uploads.iterdir()) == [".staging-young"]
