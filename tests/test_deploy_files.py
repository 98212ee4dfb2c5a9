"""The compose files, .env.example and the Dockerfile, checked against the code they deploy.

There is no Docker engine here: the files are parsed, compose's `${...}` interpolation is done
with .env.example's values (as `docker compose` does with a copied .env), and what results is
checked against the settings, the CLI, Celery's worker options and the queue names.
"""

import os
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from celery import Celery
from celery.bin.base import CLIContext
from celery.bin.worker import worker as celery_worker

from cli.main import build_parser
from core.queue import CPU_QUEUE, GPU_QUEUE, QUEUES
from core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SETTING_ENV_NAMES = {f"D2L_{name.upper()}" for name in Settings.model_fields}
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.workers.yml")
APP_SERVICES = {
    "docker-compose.yml": ("migrate", "api", "worker-gpu", "worker-cpu"),
    "docker-compose.workers.yml": ("worker-gpu", "worker-cpu"),
}
ONE_SHOT = {"migrate", "minio-init"}
WORKER_MACHINE_ENV = {"SERVER_HOST": "10.0.0.1"}


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as compose reads an env file (comments and blank lines skipped)."""
    env = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, separator, value = line.partition("=")
            assert separator and re.fullmatch(r"[A-Z_][A-Z0-9_]*", key), line
            env[key] = value
    return env


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default},
    ${VAR:?error}, ${VAR?error}, nested defaults. A required variable that is unset fails."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            depth, j = 1, i + 2
            while depth:
                if text.startswith("${", j):
                    depth, j = depth + 1, j + 2
                    continue
                depth -= text[j] == "}"
                j += 1
            out.append(_substitute(text[i + 2 : j - 1], env))
            i = j
        elif text[i] == "$" and (match := re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)", text[i:])):
            out.append(env.get(match.group(1), ""))
            i += match.end()
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _substitute(expression: str, env: dict[str, str]) -> str:
    match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])(.*))?", expression, re.S)
    assert match, f"not an interpolation compose knows: ${{{expression}}}"
    name, operator, argument = match.groups()
    value = env.get(name)
    unset = value is None or (operator is not None and operator.startswith(":") and value == "")
    if operator and operator.endswith("?") and unset:
        raise AssertionError(f"required variable {name} is unset: {argument}")
    if operator and operator.endswith("-") and unset:
        return interpolate(argument, env)
    return value or ""


def interpolated(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolated(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolated(value, env) for key, value in node.items()}
    return node


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return read_env_file(ROOT / ".env.example")


def load_compose(name: str, env: dict[str, str]) -> dict[str, Any]:
    raw = yaml.safe_load((ROOT / name).read_text())
    return interpolated(raw, {**env, **WORKER_MACHINE_ENV})


@pytest.fixture(scope="module")
def compose(env_example: dict[str, str]) -> dict[str, Any]:
    return load_compose("docker-compose.yml", env_example)


@pytest.fixture(scope="module")
def workers_compose(env_example: dict[str, str]) -> dict[str, Any]:
    return load_compose("docker-compose.workers.yml", env_example)


@pytest.fixture(scope="module", params=COMPOSE_FILES)
def any_compose(request: pytest.FixtureRequest, env_example: dict[str, str]) -> tuple[str, dict]:
    return request.param, load_compose(request.param, env_example)


def container_env(service: dict[str, Any], env_example: dict[str, str]) -> dict[str, str]:
    """What a container of `service` sees: its env_file (.env), then its `environment`."""
    env: dict[str, str] = {}
    if ".env" in service.get("env_file", []):
        env.update(env_example)
    env.update({key: str(value) for key, value in service.get("environment", {}).items()})
    return env


def settings_in_container(
    service: dict[str, Any], env_example: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """Settings() as the service's container reads them from its environment alone."""
    with monkeypatch.context() as patch:
        for key in list(os.environ):
            if key.startswith("D2L_"):
                patch.delenv(key)
        for key, value in container_env(service, env_example).items():
            patch.setenv(key, value)
        return Settings()


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    ]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def worker_options(command: list[str]) -> dict[str, Any]:
    """The options of `d2l-service worker ...` as Celery's own worker command parses them."""
    args, celery_args = build_parser().parse_known_args(command)
    assert args.command == "worker"
    obj = CLIContext(app=Celery(set_as_current=False), no_color=True, workdir=None, quiet=True)
    context = celery_worker.make_context("worker", celery_args, obj=obj)  # unknown: an error
    return dict(context.params)


# --- the files parse, and name only real things ------------------------------------------------


def test_the_env_example_sets_only_real_settings_and_no_real_secret(
    env_example: dict[str, str],
) -> None:
    for key, value in env_example.items():
        if key.startswith("D2L_"):
            assert key in SETTING_ENV_NAMES, f".env.example: {key} is not a setting"
        if "PASSWORD" in key or "SECRET" in key:
            assert value.startswith("change-me"), f"{key} must be a placeholder"
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    assert ".env" in (ROOT / ".dockerignore").read_text().split()


def test_every_d2l_variable_in_the_compose_files_is_a_setting(
    any_compose: tuple[str, dict],
) -> None:
    name, compose = any_compose
    for service_name, service in compose["services"].items():
        for key in service.get("environment", {}):
            if key.startswith("D2L_"):
                assert key in SETTING_ENV_NAMES, f"{name} {service_name}: {key} is not a setting"


def test_no_secret_is_written_into_the_compose_files() -> None:
    for name in COMPOSE_FILES:
        raw = (ROOT / name).read_text()
        for secret in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "AWS_SECRET_ACCESS_KEY"):
            for use in re.findall(rf"\$\{{{secret}([^}}]*)\}}", raw):
                assert use.startswith(":?"), (
                    f"{name}: ${{{secret}}} must be required, not defaulted"
                )
        assert "change-me" not in raw


def test_depends_on_names_existing_services_with_known_conditions(
    any_compose: tuple[str, dict],
) -> None:
    name, compose = any_compose
    services = compose["services"]
    for service_name, service in services.items():
        depends = service.get("depends_on", {})
        for target, rule in depends.items():
            assert target in services, f"{name} {service_name} depends on unknown {target}"
            assert rule["condition"] in ("service_healthy", "service_completed_successfully")
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"
            else:
                assert target in ONE_SHOT


def test_every_long_running_service_has_a_healthcheck(any_compose: tuple[str, dict]) -> None:
    name, compose = any_compose
    for service_name, service in compose["services"].items():
        if service_name in ONE_SHOT:
            assert service["restart"] == "no"
            continue
        check = service.get("healthcheck")
        assert check and check["test"][0] in ("CMD", "CMD-SHELL"), f"{name} {service_name}"
        assert service.get("restart") == "unless-stopped", f"{name} {service_name}"


# --- the main deployment -------------------------------------------------------------------------


def test_compose_has_the_deployment_services(compose: dict) -> None:
    services = compose["services"]
    assert {
        "api",
        "worker-gpu",
        "worker-cpu",
        "redis",
        "postgres",
        "migrate",
        "minio",
        "minio-init",
        "flower",
    } <= set(services)
    assert services["flower"]["profiles"] == ["flower"]
    assert services["worker-gpu"]["profiles"] == ["gpu"]  # a CPU-only host leaves it out
    unprofiled = {name for name, service in services.items() if "profiles" not in service}
    assert {"api", "worker-cpu", "migrate", "redis", "postgres", "minio"} <= unprofiled


def test_app_services_get_valid_settings_from_their_environment(
    any_compose: tuple[str, dict], env_example: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each app container's environment, read by Settings exactly as in the container."""
    name, compose = any_compose
    for service_name in APP_SERVICES[name]:
        service = compose["services"][service_name]
        assert service["env_file"] == [".env"], f"{name} {service_name}: secrets from .env"
        settings = settings_in_container(service, env_example, monkeypatch)
        assert settings.database_url.startswith("postgresql+psycopg://d2l:change-me-postgres@")
        assert settings.broker_url.startswith("redis://:change-me-redis@")
        assert settings.artifact_url == "s3://d2l-artifacts/artifacts"
        assert settings.artifact_storage_options["endpoint_url"].endswith(":9000")
        assert settings.auth is True
        assert str(settings.data_dir) == "/data"
        mounts = {volume.split(":")[1] for volume in service["volumes"]}
        assert "/data" in mounts


def test_app_services_share_database_broker_and_artifacts(compose: dict) -> None:
    services = compose["services"]
    shared = {"D2L_DATABASE_URL", "D2L_BROKER_URL", "D2L_ARTIFACT_URL", "D2L_AUTH"}
    environments = [services[name]["environment"] for name in APP_SERVICES["docker-compose.yml"]]
    for key in shared:
        assert len({env[key] for env in environments}) == 1, key
    env = environments[0]
    assert "@postgres:5432/" in env["D2L_DATABASE_URL"]
    assert "@redis:6379/" in env["D2L_BROKER_URL"]
    assert "http://minio:9000" in env["D2L_ARTIFACT_STORAGE_OPTIONS"]


def test_commands_are_valid_d2l_service_commands(compose: dict) -> None:
    parser = build_parser()
    expected = {"migrate": "migrate", "api": "api", "worker-gpu": "worker", "worker-cpu": "worker"}
    for name, subcommand in expected.items():
        args, _ = parser.parse_known_args(compose["services"][name]["command"])
        assert args.command == subcommand
    api_args, extra = parser.parse_known_args(compose["services"]["api"]["command"])
    assert extra == []
    assert api_args.host == "0.0.0.0" and api_args.workers >= 2 and api_args.no_migrate
    published = compose["services"]["api"]["ports"][0].split(":")[-1]
    assert int(published) == api_args.port


def test_app_services_wait_for_the_migration_the_broker_and_the_bucket(compose: dict) -> None:
    services = compose["services"]
    for name in ("api", "worker-gpu", "worker-cpu"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["minio-init"]["condition"] == "service_completed_successfully"
        assert depends["redis"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["minio-init"]["depends_on"]["minio"]["condition"] == "service_healthy"
    bucket_command = " ".join(services["minio-init"]["entrypoint"])
    assert "mc mb --ignore-existing" in bucket_command and "$ARTIFACT_BUCKET" in bucket_command
    bucket = services["minio-init"]["environment"]["ARTIFACT_BUCKET"]
    assert services["api"]["environment"]["D2L_ARTIFACT_URL"].startswith(f"s3://{bucket}/")


def test_redis_persists_every_message_and_never_evicts(compose: dict) -> None:
    redis = compose["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command
    assert "--requirepass" in command
    assert any(volume.endswith(":/data") for volume in redis["volumes"])
    assert any(
        volume.endswith(":/var/lib/postgresql/data")
        for volume in compose["services"]["postgres"]["volumes"]
    )
    assert set(compose["volumes"]) >= {"pgdata", "redisdata", "miniodata", "d2l-data"}


def test_services_other_machines_reach_listen_where_the_env_file_says(compose: dict) -> None:
    for name, port in (("postgres", 5432), ("redis", 6379), ("minio", 9000)):
        assert f"127.0.0.1:{port}:{port}" in compose["services"][name]["ports"]  # PUBLISH_ADDRESS
    assert compose["services"]["flower"]["ports"] == ["127.0.0.1:5555:5555"]


# --- workers -------------------------------------------------------------------------------------


def test_workers_consume_real_queues_with_celery_options(any_compose: tuple[str, dict]) -> None:
    _, compose = any_compose
    services = compose["services"]
    gpu = worker_options(services["worker-gpu"]["command"])
    cpu = worker_options(services["worker-cpu"]["command"])
    assert GPU_QUEUE in gpu["queues"] and set(gpu["queues"]) <= set(QUEUES)
    assert gpu["concurrency"] == 1  # one job at a time on its GPUs
    assert cpu["queues"] == [CPU_QUEUE] and cpu["concurrency"] >= 1
    for service_name in ("worker-gpu", "worker-cpu"):
        service = services[service_name]
        hostname = worker_options(service["command"])["hostname"]
        # The healthcheck pings this very node: WORKER_NAME@$HOSTNAME is its --hostname.
        assert hostname.split("@")[0] == service["environment"]["WORKER_NAME"]
        check = service["healthcheck"]["test"][1]
        assert 'inspect ping -d "$WORKER_NAME@$HOSTNAME"' in check
        assert '-b "$D2L_BROKER_URL"' in check


def test_workers_have_time_to_send_their_jobs_back_on_sigterm(
    any_compose: tuple[str, dict],
) -> None:
    """A warm shutdown stops running jobs within one heartbeat period (at most 5 s) and queues
    them again; compose's default 10 s grace is too tight for a slow database write."""
    _, compose = any_compose
    for name in ("worker-gpu", "worker-cpu"):
        grace = compose["services"][name]["stop_grace_period"]
        assert grace.endswith("s") and int(grace[:-1]) >= 30, (name, grace)


def test_the_gpu_worker_reserves_nvidia_gpus_and_names_its_devices(
    any_compose: tuple[str, dict],
) -> None:
    _, compose = any_compose
    worker = compose["services"]["worker-gpu"]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert re.fullmatch(r"\d+(,\d+)*", worker["environment"]["CUDA_VISIBLE_DEVICES"])
    assert "deploy" not in compose["services"]["worker-cpu"]
    assert "CUDA_VISIBLE_DEVICES" not in compose["services"]["worker-cpu"]["environment"]


def test_the_workers_file_starts_workers_alone_pointed_at_the_first_machine(
    compose: dict, workers_compose: dict
) -> None:
    services = workers_compose["services"]
    assert set(services) == {"worker-gpu", "worker-cpu"}
    host = WORKER_MACHINE_ENV["SERVER_HOST"]
    for service in services.values():
        env = service["environment"]
        assert f"@{host}:5432/" in env["D2L_DATABASE_URL"]
        assert f"@{host}:6379/" in env["D2L_BROKER_URL"]
        assert f"http://{host}:9000" in env["D2L_ARTIFACT_STORAGE_OPTIONS"]
        main = compose["services"]["worker-cpu"]["environment"]
        assert set(env) - {"CUDA_VISIBLE_DEVICES"} == set(main), "same settings as machine 1"
        assert env["D2L_ARTIFACT_URL"] == main["D2L_ARTIFACT_URL"]
    with pytest.raises(AssertionError, match="SERVER_HOST"):
        raw = yaml.safe_load((ROOT / "docker-compose.workers.yml").read_text())
        interpolated(raw, read_env_file(ROOT / ".env.example"))  # no SERVER_HOST: refused


# --- the image -----------------------------------------------------------------------------------


def built_services(compose: dict) -> list[dict]:
    return [service for service in compose["services"].values() if "build" in service]


def test_every_service_runs_the_one_image_the_dockerfile_builds(
    any_compose: tuple[str, dict],
) -> None:
    name, compose = any_compose
    built = built_services(compose)
    assert built, f"{name} builds the image"
    declared = [arg for kind, arg in dockerfile_instructions() if kind == "ARG"]
    for service in built:
        build = service["build"]
        context = build if isinstance(build, str) else build["context"]
        assert context == "."
        args = {} if isinstance(build, str) else build.get("args", {})
        for key in args:
            assert any(arg.split("=", 1)[0] == key for arg in declared), f"{name}: {key}"
    images = {
        service["image"]
        for service in compose["services"].values()
        if str(service.get("image", "")).startswith("d2l-service")
    }
    assert images == {"d2l-service"}, f"{name} runs one image: {images}"


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


def test_dockerfile_installs_the_locked_set_with_hashes_then_the_service_alone() -> None:
    """The image holds exactly what the suite passed with: the lock's s3 set (the service plus
    s3fs), hash-checked, and then the project without resolving anything again."""
    instructions = dockerfile_instructions()
    runs = [arg for kind, arg in instructions if kind == "RUN"]
    locked = next(run for run in runs if "-r requirements/s3.txt" in run)
    assert "--require-hashes" in locked
    copied = [shlex.split(arg) for kind, arg in instructions if kind == "COPY"]
    assert ["requirements/s3.txt", "./requirements/s3.txt"] in copied
    project = next(run for run in runs if re.search(r"pip install --no-deps \.(\s|$)", run))
    assert runs.index(locked) < runs.index(project)
    lock = (ROOT / "requirements" / "s3.txt").read_text()
    assert re.search(r"^torch==2\.14\.1 ", lock, re.M)
    assert re.search(r"^s3fs==", lock, re.M)  # D2L_ARTIFACT_URL=s3://... works in every image
    assert not any(kind == "ARG" for kind, _ in instructions), "one build, from the lock"


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
    assert "s3" in project["project"]["optional-dependencies"]


def test_interpolation_follows_compose_rules() -> None:
    env = {"A": "a", "EMPTY": ""}
    assert interpolate("$$HOME ${A} $A ${B:-x} ${EMPTY:-d} ${EMPTY-d}", env) == "$HOME a a x d "
    assert interpolate("${B:-http://${A}:9000}", env) == "http://a:9000"
    with pytest.raises(AssertionError, match="needed"):
        interpolate("${B:?needed}", env)


def test_an_empty_artifact_url_keeps_checkpoints_in_the_data_directory(
    env_example: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shared-directory (NFS) deployment: ARTIFACT_URL= in .env."""
    compose = load_compose("docker-compose.yml", {**env_example, "ARTIFACT_URL": ""})
    service = compose["services"]["worker-cpu"]
    settings = settings_in_container(service, env_example, monkeypatch)
    assert settings.artifact_url == ""
    assert settings.artifacts == Path("/data/artifacts")
