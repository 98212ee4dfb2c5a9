"""`d2l-service follow`: a job's events as a progress bar with its latest metrics (tqdm)."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm

from d2l_client.client import Client
from d2l_client.sse import Event

SHOWN = ("train_loss", "train_acc", "val_loss", "val_acc")


def postfix(metrics: dict[str, float]) -> dict[str, str]:
    return {key: f"{metrics[key]:.4g}" for key in SHOWN if key in metrics}


def describe_end(job: dict[str, Any]) -> str:
    result = job.get("result") or {}
    parts = [f"job {job['id']} {job['status']}"]
    for key in ("test_acc", "test_loss", "train_error", "test_error"):
        if isinstance(result.get(key), int | float):
            parts.append(f"{key}={result[key]:.4g}")
    if job.get("model_id"):
        parts.append(f"model {job['model_id']}")
    if job.get("error"):
        parts.append(job["error"])
    return ", ".join(parts)


def apply(bar: tqdm, event: Event) -> None:  # type: ignore[type-arg]
    """One event moves the bar: progress sets it, metrics show beside it, status names it."""
    if event.kind == "progress":
        steps = event.data.get("epoch_steps") or 0  # within the epoch under way, when known
        within = event.data.get("epoch_step", 0) / steps if steps else 0.0
        bar.total = event.data["epochs"]
        bar.n = round(event.data["epoch"] + within, 2)
        bar.refresh()
    elif event.kind == "metrics":
        run = event.data.get("run")
        label = f"epoch {event.data['epoch']}" + (f" ({run})" if run else "")
        bar.set_postfix(postfix(event.data["metrics"]), refresh=False)
        bar.set_description(label)
    elif event.kind == "status":
        bar.set_description(event.data["status"])


def follow_job(client: Client, job_id: str) -> int:
    """Follow to the end; exit code 0 when the job succeeded, 1 otherwise."""
    job = client.job(job_id)
    total = job.info["progress"]["epochs"]
    with tqdm(total=total, unit="epoch", file=sys.stderr, dynamic_ncols=True) as bar:
        for event in job.follow():
            apply(bar, event)
    print(describe_end(dict(job.info)))
    return 0 if job.status == "succeeded" else 1
