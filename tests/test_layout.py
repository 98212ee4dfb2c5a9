"""The house's import rules (STYLE.md): api and worker never import each other, models only torch."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "api": {"worker"},
    "worker": {"api", "fastapi", "starlette"},
    "core": {"api", "worker", "fastapi", "starlette"},
    "migrations": {"api", "worker"},
    "models": {"api", "worker", "core", "fastapi", "starlette", "sqlalchemy", "celery", "pydantic"},
}


def imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


# d2l_client is installed on people's laptops: the standard library, httpx and tqdm only.
CLIENT_MAY_IMPORT = {"d2l_client", "httpx", "anyio", "tqdm", "__future__"}


def test_the_client_stands_alone() -> None:
    import sys

    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name
            for name in imported_top_levels(path)
            if name not in CLIENT_MAY_IMPORT and name not in sys.stdlib_module_names
        )
        for path in (ROOT / "d2l_client").rglob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_one_way(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_top_levels(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_nothing_outside_settings_reads_the_environment() -> None:
    readers = [
        str(path.relative_to(ROOT))
        for package in FORBIDDEN
        for path in (ROOT / package).rglob("*.py")
        if path != ROOT / "core" / "settings.py"
        and ("os.environ" in path.read_text() or "os.getenv" in path.read_text())
    ]
    assert readers == []


def test_every_torch_load_is_weights_only() -> None:
    for package in FORBIDDEN:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and getattr(node.func, "attr", None) == "load"
                    and getattr(node.func.value, "id", None) == "torch"
                ):
                    keywords = {k.arg: k.value for k in node.keywords}
                    assert isinstance(keywords.get("weights_only"), ast.Constant), path
                    assert keywords["weights_only"].value is True, path
