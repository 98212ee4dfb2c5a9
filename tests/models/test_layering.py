"""`models` depends on torch and the standard library only (STYLE.md's import rule)."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("api", "core", "worker", "fastapi", "pydantic", "sqlalchemy", "celery", "sklearn")


def test_models_imports_nothing_of_the_service() -> None:
    script = "import sys, models; print('\\n'.join(sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    ).stdout.split()
    roots = {name.split(".")[0] for name in loaded}
    assert not roots & set(FORBIDDEN), sorted(roots & set(FORBIDDEN))
