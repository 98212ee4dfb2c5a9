"""Artifact storage: the same behaviour from the directory backend and from an S3 bucket."""

import hashlib
import io
import os
import pickle
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from core.artifacts import (
    ArtifactError,
    ArtifactStore,
    BaseArtifactStore,
    FsspecArtifactStore,
    open_artifact_store,
    open_artifact_url,
)
from core.settings import Settings
from tests.objectstore import S3Server, moto_s3_server

ESCAPING_KEYS = ["../escape.bin", "/abs.bin", "a\\b.bin", "a/../../escape.bin", "", "a//b", "./a"]


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    with moto_s3_server() as server:
        yield server


@pytest.fixture(params=["directory", "s3"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[BaseArtifactStore, Callable[[], list[str]]]:
    """A fresh store, and a function that lists every key under its root or bucket."""
    if request.param == "directory":
        root = tmp_path / "root"
        root.mkdir()

        def files() -> list[str]:
            return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())

        return ArtifactStore(root), files
    server: S3Server = request.getfixturevalue("s3_server")
    bucket = server.new_bucket()
    store = FsspecArtifactStore(f"s3://{bucket}/prefix", server.storage_options)

    def objects() -> list[str]:
        store.fs.invalidate_cache()
        return sorted(path.removeprefix(f"{bucket}/") for path in store.fs.find(bucket))

    return store, objects


@pytest.fixture
def store(backend: tuple[BaseArtifactStore, Callable[[], list[str]]]) -> BaseArtifactStore:
    return backend[0]


def test_checkpoint_round_trips_through_a_weights_only_load(store: BaseArtifactStore) -> None:
    net = torch.nn.Linear(3, 2)
    stored = store.save_checkpoint(
        "job1", 2, {"arch": "x", "epoch": 2, "state_dict": net.state_dict()}
    )
    assert stored.path == "jobs/job1/epoch-0002.pt"
    assert len(store.read_bytes(stored.path, sha256=stored.sha256)) == stored.bytes
    payload = store.load_checkpoint(stored.path, sha256=stored.sha256)
    assert payload["epoch"] == 2 and payload["arch"] == "x"
    assert torch.equal(payload["state_dict"]["weight"], net.weight.detach())


def test_a_changed_artifact_is_refused_on_load(store: BaseArtifactStore) -> None:
    stored = store.save_checkpoint("job1", 1, {"state_dict": {"w": torch.ones(2)}})
    data = bytearray(store.read_bytes(stored.path, sha256=stored.sha256))
    data[-1] ^= 0xFF
    store.write_bytes(stored.path, bytes(data))  # changed behind the database's back
    with pytest.raises(ArtifactError, match="sha256"):
        store.load_checkpoint(stored.path, sha256=stored.sha256)


def test_a_missing_artifact_is_reported_by_path(store: BaseArtifactStore) -> None:
    with pytest.raises(ArtifactError, match=r"jobs/none\.pt is missing"):
        store.read_bytes("jobs/none.pt", sha256="0" * 64)


def test_writes_replace_whole_and_leave_nothing_beside(
    backend: tuple[BaseArtifactStore, Callable[[], list[str]]],
) -> None:
    store, listing = backend
    store.write_bytes("a/b.bin", b"old")
    stored = store.write_bytes("a/b.bin", b"new")
    assert stored.sha256 == hashlib.sha256(b"new").hexdigest() and stored.bytes == 3
    assert listing() == [f"{_root_name(store)}/a/b.bin"]
    assert store.read_bytes("a/b.bin", sha256=stored.sha256) == b"new"


@pytest.mark.parametrize("key", ESCAPING_KEYS)
def test_keys_that_could_leave_the_store_are_refused(
    backend: tuple[BaseArtifactStore, Callable[[], list[str]]], key: str
) -> None:
    store, listing = backend
    with pytest.raises(ArtifactError, match="leaves"):
        store.write_bytes(key, b"x")
    with pytest.raises(ArtifactError, match="leaves"):
        store.read_bytes(key, sha256="0" * 64)
    with pytest.raises(ArtifactError, match="leaves"):
        store.delete(key)
    assert listing() == []


def test_delete_removes_and_is_idempotent(store: BaseArtifactStore) -> None:
    stored = store.save_checkpoint("job", 1, {"state_dict": {}})
    store.delete(stored.path)
    store.delete(stored.path)  # already gone: nothing happens
    with pytest.raises(ArtifactError, match="missing"):
        store.read_bytes(stored.path, sha256=stored.sha256)


def test_keys_under_a_folder_are_listed_and_read_without_a_checksum(
    store: BaseArtifactStore,
) -> None:
    """Job logs: copies from each worker under logs/<job_id>/, no checksum recorded."""
    store.write_bytes("logs/j/b.log", b"b")
    store.write_bytes("logs/j/a.log", b"a")
    store.write_bytes("logs/k/c.log", b"c")
    assert store.list_keys("logs/j") == ["logs/j/a.log", "logs/j/b.log"]
    assert store.list_keys("logs/none") == []
    assert store.read_unchecked("logs/j/a.log") == b"a"
    assert store.read_unchecked("logs/j/none.log") is None
    with pytest.raises(ArtifactError, match="leaves"):
        store.list_keys("../logs")


def test_pickled_code_in_a_checkpoint_is_not_executed(
    store: BaseArtifactStore, tmp_path: Path
) -> None:
    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (Path.touch, (tmp_path / "pwned",))

    buffer = io.BytesIO()
    torch.save({"x": Evil()}, buffer, pickle_module=pickle)
    stored = store.write_bytes("evil.pt", buffer.getvalue())
    with pytest.raises(Exception, match=r"(?i)weights"):
        store.load_checkpoint(stored.path, sha256=stored.sha256)
    assert not (tmp_path / "pwned").exists()


def test_a_store_reopened_from_its_url_reads_what_was_written(
    store: BaseArtifactStore, s3_server: S3Server
) -> None:
    """The data-parallel ranks reopen the worker's store from `store.url` (worker/distributed)."""
    stored = store.write_bytes("jobs/j/x.bin", b"payload")
    again = open_artifact_url(store.url, s3_server.storage_options)
    assert type(again) is type(store)
    assert again.read_bytes("jobs/j/x.bin", sha256=stored.sha256) == b"payload"


def test_a_failed_put_leaves_the_previous_object(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upload that breaks off never replaces the object readers see: a write is one PUT
    (no delete first, no appends), and S3 publishes an object only when its PUT completes."""
    store = FsspecArtifactStore(f"s3://{s3_server.new_bucket()}/p", s3_server.storage_options)
    first = store.write_bytes("ckpt.pt", b"first")
    real_call = store.fs._call_s3
    calls: list[str] = []

    async def call_s3(method: str, *args: object, **kwargs: object) -> object:
        calls.append(method)
        if method == "put_object":
            raise ConnectionResetError("connection lost mid-upload")
        return await real_call(method, *args, **kwargs)

    monkeypatch.setattr(store.fs, "_call_s3", call_s3)
    with pytest.raises(ConnectionResetError):
        store.write_bytes("ckpt.pt", b"second, never stored")
    monkeypatch.undo()
    assert calls == ["put_object"]
    assert store.read_bytes("ckpt.pt", sha256=first.sha256) == b"first"


def test_settings_choose_the_backend(tmp_path: Path, s3_server: S3Server) -> None:
    directory = open_artifact_store(Settings(data_dir=tmp_path))
    assert isinstance(directory, ArtifactStore) and directory.root == tmp_path / "artifacts"
    local = open_artifact_store(Settings(data_dir=tmp_path, artifact_url=f"file://{tmp_path}/a"))
    assert isinstance(local, ArtifactStore) and local.root == tmp_path / "a"
    bucket = s3_server.new_bucket()
    settings = Settings(
        data_dir=tmp_path,
        artifact_url=f"s3://{bucket}/d2l",
        artifact_storage_options=s3_server.storage_options,
    )
    s3 = open_artifact_store(settings)
    assert isinstance(s3, FsspecArtifactStore) and s3.prefix == f"{bucket}/d2l"
    memory = open_artifact_store(Settings(data_dir=tmp_path, artifact_url="memory://d2l-test"))
    assert isinstance(memory, FsspecArtifactStore)
    stored = memory.write_bytes("k", b"v")
    assert memory.read_bytes("k", sha256=stored.sha256) == b"v"


def test_storage_options_come_from_the_environment_as_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("D2L_ARTIFACT_URL", "s3://bucket/prefix")
    monkeypatch.setenv("D2L_ARTIFACT_STORAGE_OPTIONS", '{"endpoint_url": "http://minio:9000"}')
    settings = Settings(data_dir=tmp_path)
    assert settings.artifact_url == "s3://bucket/prefix"
    assert settings.artifact_storage_options == {"endpoint_url": "http://minio:9000"}


@pytest.mark.parametrize("url", ["bucket/prefix", "file://relative", "://x", "s3://"])
def test_an_artifact_url_that_is_not_a_url_is_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValueError, match="artifact_url"):
        Settings(data_dir=tmp_path, artifact_url=url)


def _root_name(store: BaseArtifactStore) -> str:
    return "root" if isinstance(store, ArtifactStore) else "prefix"


# The directory backend's own guarantees: temp file + fsync + rename, links cannot escape.


def test_paths_outside_the_root_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="leaves"):
        ArtifactStore(tmp_path / "root").write_bytes("../escape.bin", b"x")
    assert not (tmp_path / "escape.bin").exists()


def test_a_link_out_of_the_root_is_refused(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "out").symlink_to(tmp_path)
    with pytest.raises(ArtifactError, match="leaves"):
        ArtifactStore(tmp_path / "root").write_bytes("out/escape.bin", b"x")
    assert not (tmp_path / "escape.bin").exists()


def test_a_process_killed_while_writing_a_checkpoint_leaves_the_previous_one_intact(
    tmp_path: Path,
) -> None:
    """Fault injection: SIGKILL in the middle of the second checkpoint's write (after its bytes
    are in the temporary file, before the rename). The first still loads and verifies, and no
    half-written file stands where a checkpoint is read from."""
    store = ArtifactStore(tmp_path)
    first = store.save_checkpoint("job", 1, {"state_dict": {"w": torch.ones(3)}})
    child = os.fork()
    if child == 0:  # the worker that dies mid-write
        os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)  # type: ignore[assignment]
        store.save_checkpoint("job", 2, {"state_dict": {"w": torch.zeros(10_000)}})
        os._exit(0)  # never reached
    _, status = os.waitpid(child, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    payload = store.load_checkpoint(first.path, sha256=first.sha256)
    assert torch.equal(payload["state_dict"]["w"], torch.ones(3))
    assert not (tmp_path / "jobs" / "job" / "epoch-0002.pt").exists()
    leftovers = list((tmp_path / "jobs" / "job").glob(".*.tmp"))
    assert len(leftovers) == 1  # the killed write's temp file...
    assert store.remove_partial_writes() == 0  # ...is young: it could be a write under way
    os.utime(leftovers[0], (time.time() - 7200, time.time() - 7200))
    assert store.remove_partial_writes() == 1  # what a worker does when it starts
    assert [p.name for p in (tmp_path / "jobs" / "job").iterdir()] == ["epoch-0001.pt"]
    assert store.load_checkpoint(first.path, sha256=first.sha256)["format"] == 1


def test_stale_keys_are_the_keys_written_long_enough_ago(store: BaseArtifactStore) -> None:
    store.write_bytes("jobs/a/epoch-0001.pt", b"one")
    store.write_bytes("jobs/b/epoch-0001.pt", b"two")
    assert store.stale_keys("jobs", older_than_s=3600) == []  # just written: maybe under way
    in_the_future = -60.0  # a cutoff past now: every key written so far is old enough
    assert store.stale_keys("jobs", older_than_s=in_the_future) == [
        "jobs/a/epoch-0001.pt",
        "jobs/b/epoch-0001.pt",
    ]
    assert store.stale_keys("nothing", older_than_s=in_the_future) == []
