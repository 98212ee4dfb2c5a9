"""The README's two commands stay true: CI runs exactly its test command."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
    import json
    import re

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
