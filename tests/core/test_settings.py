from pathlib import Path

import pytest
from pydantic import ValidationError

from core.settings import Settings, get_settings


def test_defaults_are_the_embedded_mode_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path}/d2l.sqlite3"
    assert settings.broker_url == "filesystem://"
    assert settings.embedded_broker
    assert settings.artifacts == tmp_path / "artifacts"
    assert settings.broker_dir.is_relative_to(tmp_path)


def test_environment_with_the_d2l_prefix_configures_scale_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("D2L_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("D2L_DATABASE_URL", "postgresql+psycopg://u@db:5432/d2l")
    monkeypatch.setenv("D2L_BROKER_URL", "redis://redis:6379/0")
    monkeypatch.setenv("D2L_ARTIFACT_DIR", "/srv/artifacts")
    get_settings.cache_clear()
    try:
        settings = get_settings()
        assert settings.database_url == "postgresql+psycopg://u@db:5432/d2l"
        assert settings.broker_url == "redis://redis:6379/0"
        assert not settings.embedded_broker
        assert settings.artifacts == Path("/srv/artifacts")
        assert get_settings() is settings  # cached: read once per process
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize("field", ["data_dir", "artifact_dir"])
def test_relative_directories_are_refused(field: str) -> None:
    with pytest.raises(ValidationError, match="absolute path"):
        Settings(**{field: "relative/dir"})


def test_unknown_inference_device_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cuda:N"):
        Settings(data_dir=tmp_path, inference_device="tpu")


def test_ensure_dirs_creates_everything_the_embedded_mode_writes(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "fresh")
    settings.ensure_dirs()
    assert (tmp_path / "fresh" / "artifacts").is_dir()
    assert (tmp_path / "fresh" / "broker" / "queue").is_dir()


def test_a_redis_visibility_timeout_shorter_than_a_job_may_run_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="broker_visibility_timeout_s"):
        Settings(
            data_dir=tmp_path,
            broker_url="redis://127.0.0.1:6379/0",
            job_time_limit_s=3600,
            broker_visibility_timeout_s=3000,
        )
    fine = Settings(
        data_dir=tmp_path,
        broker_url="redis://127.0.0.1:6379/0",
        job_time_limit_s=3600,
        broker_visibility_timeout_s=7200,
    )
    assert fine.hard_time_limit(None) == 3600 + fine.time_limit_grace_s
    assert fine.hard_time_limit(60) == 60 + fine.time_limit_grace_s
