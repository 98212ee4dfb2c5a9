from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from tests.conftest import RecordingQueue
from tests.objectstore import moto_s3_server


def test_healthz_answers_while_the_process_is_up(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_checks_the_database_and_the_broker(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok", "artifacts": "ok"}


def test_readyz_is_503_and_names_the_broker_when_it_is_down(
    client: TestClient, queue: RecordingQueue
) -> None:
    queue.fail_with = ConnectionError("refused")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"].startswith("unreachable")
    assert response.json()["checks"]["database"] == "ok"


def test_readyz_is_503_and_names_the_database_when_it_is_down(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, database_url="postgresql+psycopg://nobody@127.0.0.1:1/none"
    )
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("unreachable")
    assert response.json()["checks"]["broker"] == "ok"


def test_readyz_is_503_and_names_a_missing_bucket(tmp_path: Path) -> None:
    with moto_s3_server() as s3:
        settings = Settings(
            data_dir=tmp_path,
            artifact_url="s3://no-such-bucket/ckpt",
            artifact_storage_options=s3.storage_options,
        )
        app = create_app(settings)
        app.state.job_queue = RecordingQueue()
        with TestClient(app) as client:
            missing = client.get("/readyz")
        bucket = s3.new_bucket()
        settings = settings.model_copy(update={"artifact_url": f"s3://{bucket}/ckpt"})
        app = create_app(settings)
        app.state.job_queue = RecordingQueue()
        with TestClient(app) as client:
            present = client.get("/readyz")
    assert missing.status_code == 503
    assert "no-such-bucket" in missing.json()["checks"]["artifacts"]
    assert present.status_code == 200, present.json()
