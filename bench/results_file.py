"""bench/RESULTS.md, written one titled section at a time: a new run of a benchmark replaces its
own section and leaves the others as they were."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def replace_section(title: str, section: str) -> None:
    """Put `section` (which starts with the `## title` line) in place of the old one."""
    existing = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    start = existing.find(title)
    if start >= 0:
        end = existing.find("\n## ", start + 1)
        existing = existing[:start] + existing[end + 1 if end >= 0 else len(existing) :]
    RESULTS.write_text(existing.rstrip() + "\n\n" + section)
