"""`d2l-service follow`: a job's events as lines a person, or a pipe, can read.

Every recorded epoch is one line on stdout with its metrics (`epoch 3/10  train_loss 0.4121
...`), so they stay whole at any width and land in a pipe or file as plain text. On a terminal
(stdout and stderr both), a tqdm bar on stderr sits below those lines: the job's status, the
epoch under way (moving within it as the heartbeat reports steps) and the server's estimate of
the time left. tqdm: the bar library the client already uses, kept up to date on PyPI.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from tqdm import tqdm

from d2l_client.client import Client
from d2l_client.sse import Event
from d2l_client.types import FINISHED

SHOWN = ("train_loss", "train_acc", "val_loss", "val_acc")
# No rate and no tqdm estimate: epochs arrive in bursts, so tqdm's own pace reads "2733 epoch/s".
BAR_FORMAT = "{desc} |{bar}| {n:.1f}/{total:.0f} epochs{postfix}"


def epoch_line(data: dict[str, Any], epochs: int | None) -> str:
    """`epoch 3/10  train_loss 0.4121  train_acc 0.8834  val_loss 0.3904  val_acc 0.8902`."""
    planned = f"/{epochs}" if epochs else ""
    run = f" ({data['run']})" if data.get("run") else ""
    metrics = data["metrics"]
    values = "".join(f"  {key} {metrics[key]:.4g}" for key in SHOWN if key in metrics)
    return f"epoch {data['epoch']}{planned}{run}{values}"


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


def new_bar(epochs: int, status: str, file: TextIO) -> tqdm:  # type: ignore[type-arg]
    return tqdm(
        total=epochs,
        desc=status,
        file=file,
        dynamic_ncols=True,
        bar_format=BAR_FORMAT,
        leave=False,  # the lines above it and the end line say everything it did
    )


def move(bar: tqdm, data: dict[str, Any]) -> None:  # type: ignore[type-arg]
    """A progress event moves the bar: whole epochs done plus the step within the one under way.
    A step count at the epoch's end may be the epoch just recorded (the heartbeat has not begun
    the next one), so it adds nothing; and the bar never moves back."""
    steps = data.get("epoch_steps") or 0
    step = data.get("epoch_step", 0)
    within = step / steps if 0 < step < steps else 0.0
    bar.total = data["epochs"]
    bar.n = max(bar.n, round(data["epoch"] + within, 2))
    eta = data.get("eta_s")
    bar.set_postfix_str(f"{tqdm.format_interval(eta)} left" if eta else "", refresh=False)
    bar.refresh()


class Follower:
    """Turns a job's events into lines on `out`, and moves `bar` when there is one."""

    def __init__(
        self,
        job_id: str,
        epochs: int,
        *,
        out: TextIO,
        bar: tqdm | None = None,  # type: ignore[type-arg]
    ) -> None:
        self.job_id = job_id
        self.epochs = epochs
        self.out = out
        self.bar = bar

    def write(self, line: str) -> None:
        if self.bar is None:
            print(line, file=self.out, flush=True)
        else:
            self.bar.write(line, file=self.out)  # clears the bar, writes, draws it again

    def apply(self, event: Event) -> None:
        if event.kind == "progress":
            self.epochs = event.data["epochs"]
            if self.bar is not None:
                move(self.bar, event.data)
        elif event.kind == "metrics":
            self.write(epoch_line(event.data, self.epochs))
        elif event.kind == "status" and event.data["status"] not in FINISHED:
            if self.bar is None:  # the end line names a finished one
                self.write(f"job {self.job_id} {event.data['status']}")
            else:
                self.bar.set_description_str(event.data["status"])


def draws_a_bar(out: TextIO, bar_file: TextIO) -> bool:
    """A bar only where a person watches: into a pipe or a file it would be control codes."""
    return out.isatty() and bar_file.isatty()


def follow_job(client: Client, job_id: str) -> int:
    """Follow to the end; exit code 0 when the job succeeded, 1 otherwise."""
    job = client.job(job_id)
    epochs = job.info["progress"]["epochs"]
    bar = new_bar(epochs, job.status, sys.stderr) if draws_a_bar(sys.stdout, sys.stderr) else None
    follower = Follower(job_id, epochs, out=sys.stdout, bar=bar)
    try:
        for event in job.follow():
            follower.apply(event)
    finally:
        if bar is not None:
            bar.close()
    print(describe_end(dict(job.info)))
    return 0 if job.status == "succeeded" else 1
