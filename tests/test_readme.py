"""The README stays true: CI runs exactly its test command, its job bodies are valid, and every
example of training, following and predicting reaches the result it states."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from cli.main import main
from core.datasets.digits import load_digits_raw
from d2l_client import Client
from tests.client.live_service import Service, running_service

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
EXAMPLE_URL = "http://127.0.0.1:8000"


def fenced_commands(heading: str) -> list[str]:
    section = (ROOT / "README.md").read_text().split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    (command,) = fenced_commands("Run the tests")
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert command in ci_lines
    assert "export D2L_REQUIRE_SERVICES=1" in ci_lines


def test_the_start_command_installs_and_runs_up() -> None:
    (command,) = fenced_commands("Start it")
    assert "-r requirements/service.txt" in command and command.endswith("d2l-service up")


def test_every_job_body_in_the_readme_is_a_valid_job() -> None:
    from pydantic import TypeAdapter

    from core.jobs.kinds import JobSubmission

    text = (ROOT / "README.md").read_text()
    bodies = re.findall(r"/v1/jobs -H 'content-type: application/json' -d '(\{.*?\})'", text, re.S)
    assert len(bodies) >= 3
    for body in bodies:
        TypeAdapter(JobSubmission).validate_python(json.loads(body))


def test_every_setting_has_a_row_in_the_readme_settings_table() -> None:
    from core.settings import Settings

    section = (ROOT / "README.md").read_text().split("## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip(" `") for line in section.splitlines() if line.startswith("|")}
    missing = [name for name in Settings.model_fields if f"D2L_{name.upper()}" not in rows]
    assert missing == [], f"settings without a README row: {missing}"


def test_the_card_the_readme_shows_is_the_card_in_the_code() -> None:
    text = (ROOT / "README.md").read_text()
    section = text.split("### A new kind of job\n", 1)[1]
    shown = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert shown == (ROOT / "core/jobs/kinds/finetune.py").read_text()


# Every example of training, following and predicting runs against a live service (the app and
# a thread worker, tests/client/live_service.py) and reaches the result the README states.

STATED_ACCURACY = re.compile(r"test\s+accuracy\s+about\s+(0\.\d+)")
NUMBER = re.compile(r"\d+(?:\\\.\d+)?")  # a number in an re.escape'd line
# "About" a number: the CPU's threads and architecture move the last digits a little.
ABOUT = 0.02


def section(heading: str) -> str:
    return README.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]


def fenced_blocks(text: str, language: str) -> list[tuple[str, int]]:
    """Each fenced block of `language` in `text`, with where it ends."""
    pattern = re.compile(rf"```{language}\n(.*?)```", re.S)
    return [(match.group(1), match.end()) for match in pattern.finditer(text)]


def stated_accuracy(text: str, after: int) -> float:
    """The first `test accuracy about X` after an example: what the README promises of it."""
    match = STATED_ACCURACY.search(text, after)
    assert match is not None, f"no stated test accuracy after: {text[after - 200 : after]!r}"
    return float(match.group(1))


def commands(block: str) -> list[list[str]]:
    """A bash block's commands as argv lists: continuation lines joined, comments dropped, a
    quoted body spanning lines kept whole."""
    found, pending = [], ""
    for line in block.replace("\\\n", " ").splitlines():
        pending += line + "\n"
        try:
            argv = shlex.split(pending, comments=True)
        except ValueError:  # a quote still open: the body goes on
            continue
        found.append(argv)
        pending = ""
    assert pending == "", f"an unclosed quote in: {block!r}"
    return [argv for argv in found if argv]


def substituted(argv: list[str], values: dict[str, str]) -> list[str]:
    for placeholder, value in values.items():
        argv = [arg.replace(placeholder, value) for arg in argv]
    return argv


def curl(argv: list[str], url: str) -> httpx.Response:
    """What `curl -s [-N] [-X METHOD] URL [-H HEADER] [-d BODY] [-o FILE]` sends."""
    assert argv[0] == "curl"
    method = argv[argv.index("-X") + 1] if "-X" in argv else "GET"
    target = next(arg for arg in argv if arg.startswith(EXAMPLE_URL))
    body = argv[argv.index("-d") + 1] if "-d" in argv else None
    headers = {"content-type": "application/json"} if body is not None else {}
    target = target.replace(EXAMPLE_URL, url)
    response = httpx.request(method, target, content=body, headers=headers, timeout=120)
    assert response.is_success, f"{' '.join(argv)}: {response.status_code} {response.text}"
    if "-o" in argv and argv[argv.index("-o") + 1].endswith(".png"):
        assert response.content.startswith(b"\x89PNG"), f"{' '.join(argv)}: not a PNG"
    return response


def finished(url: str, job_id: str) -> dict[str, Any]:
    with Client(url) as client:
        return dict(client.job(job_id).wait())


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(tmp_path_factory.mktemp("readme")) as service:
        yield service


@pytest.mark.slow
def test_the_curl_examples_train_to_the_stated_accuracy_and_predict_the_sample(
    live: Service,
) -> None:
    text = section("Train and predict with curl")
    (submit, submit_end), (follow, _), (predict, _) = fenced_blocks(text, "bash")[:3]
    (submit_command,) = commands(submit)
    job = finished(live.url, curl(submit_command, live.url).json()["id"])
    assert job["result"]["test_acc"] == pytest.approx(stated_accuracy(text, submit_end), abs=ABOUT)
    values = {"JOB_ID": job["id"], "MODEL_ID": job["model_id"]}
    for argv in commands(follow):
        curl(substituted(argv, values), live.url)
    (predict_command,) = commands(predict)
    answer = curl(substituted(predict_command, values), live.url).json()
    digit = re.search(r"this sample is a (\d)", text)
    assert digit is not None and answer["predictions"][0]["label"] == digit.group(1)
    (watch, _), *_ = fenced_blocks(section("Follow, compare, script"), "bash")
    for argv in commands(watch):
        curl(substituted(argv, values), live.url)


@pytest.mark.slow
def test_the_cli_examples_run_and_train_to_the_stated_accuracy(
    live: Service,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    text = section("Follow, compare, script")
    block, end = next(b for b in fenced_blocks(text, "bash") if "d2l-service train" in b[0])
    (train, *others) = commands(block)
    monkeypatch.setenv("D2L_URL", live.url)
    monkeypatch.chdir(tmp_path)
    raw = load_digits_raw()
    Image.fromarray((raw.inputs[0].numpy() * 255 / 16).astype("uint8")).save("digit.png")
    Path("samples.json").write_text(json.dumps(raw.inputs[:2].tolist()))
    assert main(train[1:]) == 0
    out, err = capsys.readouterr()
    job_id = err.split()[1]  # "job JOB_ID queued"
    job = finished(live.url, job_id)
    assert f"job {job_id} succeeded, test_acc=" in out
    (shown, _), *_ = fenced_blocks(text, "text")
    shown_epoch = re.escape(shown.splitlines()[0])
    assert re.search(NUMBER.sub(r"[-+.e\\d]+", shown_epoch), out, re.M), "not the lines shown"
    assert job["result"]["test_acc"] == pytest.approx(stated_accuracy(text, end), abs=ABOUT)
    for argv in others:
        argv = substituted(argv, {"JOB_ID": job_id, "MODEL_ID": job["model_id"]})
        code = main(argv[1:])
        assert code == 0, f"{' '.join(argv)}: {capsys.readouterr().err}"
    assert Path("curves.png").read_bytes().startswith(b"\x89PNG")
    assert json.loads(Path("lenet.json").read_text())["class_names"][0] == "0"


@pytest.mark.slow
def test_the_python_example_prints_the_stated_accuracy(live: Service) -> None:
    text = section("Follow, compare, script")
    (code, end), *_ = fenced_blocks(text, "python")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(code.replace(EXAMPLE_URL, live.url), {})  # the README's own example
    lines = printed.getvalue().splitlines()
    assert lines[0].startswith("status {'status': ")
    assert float(lines[-1]) == pytest.approx(stated_accuracy(text, end), abs=ABOUT)


@pytest.mark.slow
def test_the_recipe_example_reaches_the_stated_accuracy(live: Service) -> None:
    text = section("Course recipes")
    (block, end), *_ = fenced_blocks(text, "bash")
    (submit,) = commands(block)
    job = finished(live.url, curl(submit, live.url).json()["id"])
    assert job["result"]["test_acc"] == pytest.approx(stated_accuracy(text, end), abs=ABOUT)
    assert job["book"]["within"] is True
