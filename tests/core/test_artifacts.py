import os
import signal
from pathlib import Path

import pytest
import torch

from core.artifacts import ArtifactError, ArtifactStore


def test_checkpoint_round_trips_through_a_weights_only_load(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    net = torch.nn.Linear(3, 2)
    stored = store.save_checkpoint(
        "job1", 2, {"arch": "x", "epoch": 2, "state_dict": net.state_dict()}
    )
    assert (tmp_path / stored.path).stat().st_size == stored.bytes
    payload = store.load_checkpoint(stored.path, sha256=stored.sha256)
    assert payload["epoch"] == 2 and payload["arch"] == "x"
    assert torch.equal(payload["state_dict"]["weight"], net.weight.detach())


def test_a_changed_file_is_refused_on_load(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    stored = store.save_checkpoint("job1", 1, {"state_dict": {"w": torch.ones(2)}})
    path = tmp_path / stored.path
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256"):
        store.load_checkpoint(stored.path, sha256=stored.sha256)


def test_a_missing_file_is_reported_by_path(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="missing"):
        ArtifactStore(tmp_path).read_bytes("jobs/none.pt", sha256="0" * 64)


def test_writes_leave_no_temporary_files_and_replace_atomically(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    store.write_bytes("a/b.bin", b"old")
    store.write_bytes("a/b.bin", b"new")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["b.bin"]
    assert (tmp_path / "a" / "b.bin").read_bytes() == b"new"


def test_paths_outside_the_root_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="leaves"):
        ArtifactStore(tmp_path / "root").write_bytes("../escape.bin", b"x")
    assert not (tmp_path / "escape.bin").exists()


def test_pickled_code_in_a_checkpoint_is_not_executed(tmp_path: Path) -> None:
    import hashlib
    import io
    import pickle

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (Path.touch, (tmp_path / "pwned",))

    buffer = io.BytesIO()
    torch.save({"x": Evil()}, buffer, pickle_module=pickle)
    data = buffer.getvalue()
    store = ArtifactStore(tmp_path)
    stored = store.write_bytes("evil.pt", data)
    with pytest.raises(Exception, match=r"(?i)weights"):
        store.load_checkpoint(stored.path, sha256=hashlib.sha256(data).hexdigest())
    assert not (tmp_path / "pwned").exists()


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
