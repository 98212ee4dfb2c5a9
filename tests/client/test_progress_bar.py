"""`d2l-service follow`'s output: a line per epoch with whole metrics, a bar below them only on a
terminal, moving within an epoch as the job's heartbeat reports steps."""

from __future__ import annotations

import io
import os

import pytest

from d2l_client.progress import Follower, draws_a_bar, new_bar
from d2l_client.sse import Event

METRICS = Event(
    "metrics",
    {
        "epoch": 3,
        "step": 240,
        "run": None,
        "metrics": {
            "train_loss": 0.41213,
            "train_acc": 0.88341,
            "val_loss": 0.3904,
            "val_acc": 0.89,
        },
    },
)
LINE = "epoch 3/10  train_loss 0.4121  train_acc 0.8834  val_loss 0.3904  val_acc 0.89"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return 2


def progress(epoch: int, step: int = 0, steps: int = 0, eta: float | None = None) -> Event:
    data = {"epoch": epoch, "epochs": 10, "epoch_step": step, "epoch_steps": steps, "eta_s": eta}
    return Event("progress", data)


def test_into_a_pipe_each_epoch_is_a_plain_line_and_there_is_no_bar() -> None:
    out = io.StringIO()
    assert not draws_a_bar(out, Terminal())
    follower = Follower("job1", 10, out=out)
    for event in (
        Event("status", {"status": "running"}),
        progress(2, 50, 100, eta=12.0),
        METRICS,
        Event("status", {"status": "succeeded"}),  # the end line says that
    ):
        follower.apply(event)
    assert out.getvalue() == f"job job1 running\n{LINE}\n"


def test_on_an_80_column_terminal_the_metrics_stay_whole_above_a_wide_bar(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    terminal_size = os.terminal_size((81, 25))  # tqdm keeps one column free
    monkeypatch.setattr(os, "get_terminal_size", lambda fd=None: terminal_size)
    out, err = Terminal(), Terminal()
    assert draws_a_bar(out, err)
    bar = new_bar(10, "queued", err)
    follower = Follower("job1", 10, out=out, bar=bar)
    follower.apply(Event("status", {"status": "running"}))
    follower.apply(METRICS)
    follower.apply(progress(3, 50, 100, eta=12.0))
    assert out.getvalue() == f"{LINE}\n"
    drawn = err.getvalue().split("\r")[-1]
    assert len(drawn) <= 80
    assert drawn.startswith("running |") and drawn.endswith("| 3.5/10 epochs, 00:12 left")
    assert len(drawn.split("|")[1]) >= 40  # the bar itself keeps its room
    assert "/s" not in err.getvalue()  # no pace of its own: epochs come in bursts
    bar.close()


def test_the_bar_shows_the_step_within_the_epoch() -> None:
    with new_bar(3, "running", io.StringIO()) as bar:
        follower = Follower("job1", 3, out=io.StringIO(), bar=bar)
        follower.apply(
            Event("progress", {"epoch": 1, "epochs": 3, "epoch_step": 50, "epoch_steps": 100})
        )
        assert bar.n == 1.5
        follower.apply(
            Event("progress", {"epoch": 2, "epochs": 3, "epoch_step": 0, "epoch_steps": 0})
        )
        assert bar.n == 2
        follower.apply(
            Event("progress", {"epoch": 2, "epochs": 3, "epoch_step": 100, "epoch_steps": 100})
        )
        assert bar.n == 2  # epoch 2's last step, not yet a third epoch
        follower.apply(
            Event("progress", {"epoch": 1, "epochs": 3, "epoch_step": 90, "epoch_steps": 100})
        )
        assert bar.n == 2  # a late reading never moves it back
        follower.apply(Event("progress", {"epoch": 3, "epochs": 3}))  # no step progress known
        assert bar.n == 3
