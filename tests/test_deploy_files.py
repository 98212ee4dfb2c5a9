"""docker-compose.yml and the Dockerfile, checked against the code they deploy (no engine here)."""

import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

from core.cli import build_parser
from core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SETTING_ENV_NAMES = {f"D2L_{name.upper()}" for name in Settings.model_fields}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    ]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_compose_has_the_deployment_services(compose: dict) -> None:
    assert {"api", "worker", "redis", "postgres", "migrate"} <= set(compose["services"])
    for name in ("api", "worker", "redis", "postgres"):
        assert "healthcheck" in compose["services"][name], name
    assert compose["services"]["migrate"]["restart"] == "no"


def test_every_d2l_variable_in_compose_is_a_setting(compose: dict) -> None:
    for name, service in compose["services"].items():
        for key in service.get("environment", {}):
            if key.startswith("D2L_"):
                assert key in SETTING_ENV_NAMES, f"{name}: {key} is not a setting"


def test_app_services_share_database_broker_and_artifacts(compose: dict) -> None:
    services = compose["services"]
    environments = [services[name]["environment"] for name in ("migrate", "api", "worker")]
    assert all(env == environments[0] for env in environments)
    env = environments[0]
    assert env["D2L_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in env["D2L_DATABASE_URL"]
    assert env["D2L_BROKER_URL"].startswith("redis://redis:6379")
    Settings(**{key[4:].lower(): value for key, value in env.items()})  # valid settings
    for name in ("api", "worker"):
        mounts = {volume.split(":")[1] for volume in services[name]["volumes"]}
        assert env["D2L_ARTIFACT_DIR"] in mounts, name


def test_commands_are_valid_d2l_service_commands(compose: dict) -> None:
    parser = build_parser()
    expected = {"migrate": "migrate", "api": "api", "worker": "worker"}
    for name, subcommand in expected.items():
        command = compose["services"][name]["command"]
        args, _ = parser.parse_known_args(command)
        assert args.command == subcommand
    api_args, _ = parser.parse_known_args(compose["services"]["api"]["command"])
    assert api_args.host == "0.0.0.0"
    published = compose["services"]["api"]["ports"][0].split(":")[-1]
    assert int(published) == api_args.port


def test_app_services_wait_for_the_migration_and_the_broker(compose: dict) -> None:
    for name in ("api", "worker"):
        depends = compose["services"][name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["redis"]["condition"] == "service_healthy"
    assert (
        compose["services"]["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    )


def test_the_worker_reserves_gpus_and_consumes_both_queues(compose: dict) -> None:
    worker = compose["services"]["worker"]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    queues = worker["command"][worker["command"].index("-Q") + 1].split(",")
    assert set(queues) == {"gpu", "cpu"}


def test_dockerfile_is_slim_non_root_and_runs_the_cli() -> None:
    instructions = dockerfile_instructions()
    kinds = [kind for kind, _ in instructions]
    assert instructions[0][0] == "FROM" and "slim" in instructions[0][1]
    user = [arg for kind, arg in instructions if kind == "USER"]
    assert user and user[-1] not in ("root", "0")
    assert kinds.index("USER") > max(i for i, k in enumerate(kinds) if k == "RUN")
    entrypoint = next(arg for kind, arg in instructions if kind == "ENTRYPOINT")
    assert entrypoint == '["d2l-service"]'
    assert "HEALTHCHECK" in kinds and "EXPOSE" in kinds


def test_dockerfile_copies_every_package_and_sets_only_real_settings() -> None:
    instructions = dockerfile_instructions()
    copied = {shlex.split(arg)[0] for kind, arg in instructions if kind == "COPY"}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [
        name.rstrip("*") for name in project["tool"]["setuptools"]["packages"]["find"]["include"]
    ]
    assert "d2l_client" in packages  # the CLI's client commands import it
    for package in (*packages, "pyproject.toml"):
        assert package in copied, f"the Dockerfile does not COPY {package}"
    env_lines = " ".join(arg for kind, arg in instructions if kind == "ENV")
    for key in re.findall(r"(D2L_[A-Z_]+)=", env_lines):
        assert key in SETTING_ENV_NAMES
    pip = next(arg for kind, arg in instructions if kind == "RUN" and "pip install" in arg)
    assert re.search(r"pip install .*\s\.(\s|$)", pip)
