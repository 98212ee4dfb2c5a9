"""The house's import rules (STYLE.md): api and worker never import each other, models only torch,
core neither the command line nor the client nor the migrations, and no two packages in a circle."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# `cli` (the `d2l-service` command) may import every package; none imports it.
FORBIDDEN = {
    "api": {"worker", "cli"},
    "worker": {"api", "cli", "fastapi", "starlette"},
    "core": {"api", "worker", "cli", "d2l_client", "migrations", "fastapi", "starlette"},
    "migrations": {"api", "worker", "cli"},
    "models": {"api", "worker", "core", "fastapi", "starlette", "sqlalchemy", "celery", "pydantic"},
}
PACKAGES = (*FORBIDDEN, "cli", "d2l_client")


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


def package_imports() -> dict[str, set[str]]:
    """Each of the house's packages -> the other house packages its modules import."""
    return {
        package: {
            name
            for path in (ROOT / package).rglob("*.py")
            for name in imported_top_levels(path)
            if name in PACKAGES and name != package
        }
        for package in PACKAGES
    }


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle between packages, each as the path that closes it."""
    found: list[list[str]] = []

    def visit(package: str, path: list[str]) -> None:
        for target in sorted(graph[package]):
            if target == path[0]:
                found.append([*path, target])
            elif target not in path and target > path[0]:  # each circle once, from its least
                visit(target, [*path, target])

    for package in sorted(graph):
        visit(package, [package])
    return found


def test_no_two_packages_import_each_other_in_a_circle() -> None:
    """A circle is what a deferred import hides: the layout itself must point one way."""
    assert circles(package_imports()) == []


def core_room_imports() -> dict[str, set[str]]:
    """Each of core's rooms (a package such as jobs/, or a top-level module such as tables.py)
    -> the other rooms its modules import."""
    graph: dict[str, set[str]] = {}
    for path in (ROOT / "core").rglob("*.py"):
        room = path.relative_to(ROOT / "core").parts[0].removesuffix(".py")
        if room == "__init__":
            continue
        targets = graph.setdefault(room, set())
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            modules: list[str] = []
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
                if node.module == "core":
                    modules = [f"core.{alias.name}" for alias in node.names]
            for module in modules:
                parts = module.split(".")
                if parts[0] == "core" and len(parts) > 1 and parts[1] != room:
                    targets.add(parts[1])
    return graph


def test_core_rooms_import_one_way() -> None:
    """Domains lean on the infrastructure and on each other in one direction (experiments ->
    jobs -> registry -> datasets -> tables ...), never back."""
    assert circles(core_room_imports()) == []


def test_a_circle_is_found_however_long() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c", "a"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_nothing_outside_settings_reads_the_environment() -> None:
    readers = [
        str(path.relative_to(ROOT))
        for package in PACKAGES
        if package != "d2l_client"  # the client runs on laptops: $D2L_URL, $D2L_TOKEN
        for path in (ROOT / package).rglob("*.py")
        if path != ROOT / "core" / "settings.py"
        and ("os.environ" in path.read_text() or "os.getenv" in path.read_text())
    ]
    assert readers == []


def test_every_torch_load_is_weights_only() -> None:
    for package in PACKAGES:
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


# A job's kind is its card's business (core/jobs/kinds/): nothing else compares it to a name or
# tells the bodies apart by type.
KIND_BRANCH = re.compile(
    r"\b(job|spec|sweep|trial|parent|Job)\.kind\s*(==|!=|in\b|not in\b)"
    r"|isinstance\(\w+, \(?(Predict)?JobCreate\b"
)
KIND_ROOM = ("core/jobs/kinds/", "core/jobs/kind_registry.py")


def test_nothing_outside_the_kind_cards_branches_on_a_kind() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for package in ("api", "core", "worker", "cli")
        for path in sorted((ROOT / package).rglob("*.py"))
        if not str(path.relative_to(ROOT)).startswith(KIND_ROOM)
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if KIND_BRANCH.search(line)
    ]
    assert found == []


def test_a_branch_on_a_kind_is_found() -> None:
    assert KIND_BRANCH.search('    if job.kind == "kfold":')
    assert KIND_BRANCH.search("    if isinstance(spec, PredictJobCreate):")
    assert not KIND_BRANCH.search("    .where(Job.kind.in_(worker_run_kinds()))")


def test_core_keeps_its_rooms_and_a_few_shared_modules() -> None:
    """core/ is read by domain (STYLE.md): a module that belongs to one goes into its room."""
    shared = sorted(p.stem for p in (ROOT / "core").glob("*.py") if p.stem != "__init__")
    assert len(shared) <= 12, shared
