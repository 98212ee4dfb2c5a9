"""The lock stays the truth: uv.lock matches pyproject.toml, and the pip sets the README and the
Dockerfile install are its exports. A dependency changed without relocking fails here, with the
command that fixes it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def relock_check(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        ["bash", str(root / "requirements" / "relock"), "--check"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def copy_of_the_lock(tmp_path: Path) -> Path:
    """pyproject.toml, uv.lock and requirements/ in `tmp_path`, to break without harm."""
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    (tmp_path / "requirements").mkdir()
    for path in (ROOT / "requirements").iterdir():
        (tmp_path / "requirements" / path.name).write_text(path.read_text())
    return tmp_path


def test_the_lock_and_its_exports_match_pyproject() -> None:
    result = relock_check(ROOT)
    assert result.returncode == 0, result.stderr


def test_a_dependency_changed_without_relocking_fails_with_the_fix(tmp_path: Path) -> None:
    copy_of_the_lock(tmp_path)
    pyproject = tmp_path / "pyproject.toml"
    text = pyproject.read_text()
    assert '"celery>=5.4,<6"' in text
    pyproject.write_text(text.replace('"celery>=5.4,<6"', '"celery>=5.4"'))  # a bound relaxed
    result = relock_check(tmp_path)
    assert result.returncode == 1
    assert "run requirements/relock" in result.stderr


def test_an_edited_export_fails_with_the_fix(tmp_path: Path) -> None:
    copy_of_the_lock(tmp_path)
    test_set = tmp_path / "requirements" / "test.txt"
    test_set.write_text(re.sub(r"^pytest==\S+", "pytest==9.2.0", test_set.read_text(), flags=re.M))
    result = relock_check(tmp_path)
    assert result.returncode == 1
    assert "requirements/test.txt is not uv.lock's export" in result.stderr


def test_every_set_pins_every_package_with_hashes() -> None:
    for name in ("service.txt", "test.txt", "s3.txt", "bench.txt"):
        text = (ROOT / "requirements" / name).read_text()
        entries = re.findall(r"^([A-Za-z0-9_.\[\],-]+)(==\S+)?", text, re.M)
        assert entries, name
        for package, pin in entries:
            assert pin, f"{name}: {package} is not pinned to one version"
        assert text.count("--hash=sha256:") >= len(entries), f"{name}: a pin without a hash"
    service = (ROOT / "requirements" / "service.txt").read_text()
    assert re.search(r"^torch==2\.14\.1 ", service, re.M)
    assert re.search(r"^torchvision==0\.29\.1 ", service, re.M)
