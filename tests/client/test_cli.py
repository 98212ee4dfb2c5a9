"""`d2l-service` client commands against a running service: what a terminal user sees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from cli.main import build_parser, main
from core.datasets.digits import load_digits_raw
from d2l_client import Client
from tests.client.conftest import Service, TrainedJob, running_job


def run(capsys: pytest.CaptureFixture[str], service: Service, *argv: str) -> tuple[int, str, str]:
    code = main([argv[0], "--url", service.url, *argv[1:]])
    out, err = capsys.readouterr()
    return code, out, err


def test_url_comes_from_d2l_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("D2L_URL", "http://gpu-box:9000")
    assert build_parser().parse_args(["jobs"]).url == "http://gpu-box:9000"
    monkeypatch.delenv("D2L_URL")
    assert build_parser().parse_args(["jobs"]).url == "http://127.0.0.1:8000"


def test_train_with_follow_ends_with_the_result(
    capsys: pytest.CaptureFixture[str], service: Service
) -> None:
    code, out, err = run(
        capsys,
        service,
        "train",
        "--arch",
        "mlp",
        "--dataset",
        "digits",
        "--epochs",
        "2",
        "--lr",
        "0.1",
        "--hp",
        "batch_size=64",
        "--experiment",
        "cli",
        "--follow",
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].endswith(" running")
    assert lines[1].startswith("epoch 1/2  train_loss ") and " val_acc " in lines[1]
    assert lines[2].startswith("epoch 2/2  train_loss ")
    assert " succeeded, test_acc=" in lines[3] and "model " in lines[3]
    assert "\r" not in out + err and "\x1b" not in out + err  # no bar into a pipe


def test_jobs_show_follow_models_and_compare(
    capsys: pytest.CaptureFixture[str], service: Service, trained_job: TrainedJob
) -> None:
    code, out, _ = run(capsys, service, "jobs", "--experiment", "client")
    assert code == 0 and trained_job.job_id in out and "succeeded" in out
    code, out, _ = run(capsys, service, "show", trained_job.job_id)
    assert code == 0 and json.loads(out)["model_id"] == trained_job.model_id
    code, out, _ = run(capsys, service, "follow", trained_job.job_id)
    assert code == 0 and f"job {trained_job.job_id} succeeded" in out
    code, out, _ = run(capsys, service, "models", "--arch", "lenet")
    assert code == 0 and trained_job.model_id in out
    code, out, _ = run(capsys, service, "compare", "client", "--metric", "test_acc")
    assert code == 0 and out.splitlines()[1].startswith("1 ")
    code, out, _ = run(capsys, service, "logs", trained_job.job_id)
    assert code == 0 and "epoch 3/3" in out


def test_predict_files_and_save_curves(
    capsys: pytest.CaptureFixture[str], service: Service, trained_job: TrainedJob, tmp_path: Path
) -> None:
    raw = load_digits_raw()
    image_path = tmp_path / "digit.png"
    Image.fromarray((raw.inputs[0].numpy() * 255 / 16).astype("uint8")).save(image_path)
    samples_path = tmp_path / "samples.json"
    samples_path.write_text(json.dumps(raw.inputs[:2].tolist()))
    code, out, err = run(
        capsys, service, "predict", trained_job.model_id, str(image_path), str(samples_path)
    )
    assert code == 0, err
    lines = out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [
        str(image_path),
        f"{samples_path}[0]",
        f"{samples_path}[1]",
    ]
    png = tmp_path / "curves.png"
    code, _, _ = run(capsys, service, "curves", trained_job.job_id, "-o", str(png))
    assert code == 0 and png.read_bytes().startswith(b"\x89PNG")
    with Image.open(png) as image:
        assert image.size == (600, 400)


def test_refusals_print_the_servers_message(
    capsys: pytest.CaptureFixture[str], service: Service
) -> None:
    code, _, err = run(capsys, service, "show", "no-such-job")
    assert code == 1 and "404" in err and "no-such-job" in err
    code, _, err = run(capsys, service, "train", "--arch", "nonet")
    assert code == 1 and "unknown arch 'nonet'" in err


def test_cancel_stops_a_running_job_and_refuses_a_finished_one(
    capsys: pytest.CaptureFixture[str], service: Service
) -> None:
    with Client(service.url) as client:
        job = running_job(client, experiment="cli")
    code, out, err = run(capsys, service, "cancel", job.id)
    assert code == 0, err
    assert out == f"job {job.id} running (cancel requested: it stops at its next step)\n"
    code, out, _ = run(capsys, service, "follow", job.id)
    assert code == 1 and f"job {job.id} cancelled" in out.splitlines()[-1]
    code, _, err = run(capsys, service, "cancel", job.id)
    assert code == 1 and "409" in err


def test_recipes_list_and_a_recipe_runs_with_the_book_beside_it(
    capsys: pytest.CaptureFixture[str], service: Service
) -> None:
    code, out, _ = run(capsys, service, "recipes")
    lenet = next(line for line in out.splitlines() if line.startswith("lenet "))
    assert code == 0 and "7.6" in lenet and "0.779" in lenet and lenet.endswith("digits")
    code, out, err = run(
        capsys, service, "recipe", "lenet", "--variant", "digits", "--epochs", "1", "--follow"
    )
    assert code == 0, err
    assert "epoch 1/1  train_loss " in out and " succeeded, test_acc=" in out
    assert "book (7.6 LeNet-5 (sigmoid, average pooling)): " in out and "test_acc 0.779" in out
    assert "  test_acc " in out and "expected >= 0.95" in out
    assert "changed from the recipe: hyperparameters.epochs: 30 -> 1" in out


def test_a_closed_pipe_ends_the_command_without_a_traceback(
    service: Service, trained_job: TrainedJob
) -> None:
    """`d2l-service show JOB | head`: the reader is gone before the command writes."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    command = [sys.executable, "-m", "cli.main", "show", trained_job.job_id, "--url", service.url]
    finished = subprocess.run(command, stdout=write_end, stderr=subprocess.PIPE, check=False)
    os.close(write_end)
    assert finished.returncode == 1 and finished.stderr.decode() == ""
