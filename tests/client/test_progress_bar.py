"""`d2l-service follow`'s bar moves within an epoch as the job's heartbeat reports steps."""

from __future__ import annotations

import io

from tqdm import tqdm

from d2l_client.progress import apply
from d2l_client.sse import Event


def test_the_bar_shows_the_step_within_the_epoch() -> None:
    with tqdm(total=3, file=io.StringIO()) as bar:
        apply(
            bar, Event("progress", {"epoch": 1, "epochs": 3, "epoch_step": 50, "epoch_steps": 100})
        )
        assert bar.n == 1.5
        apply(bar, Event("progress", {"epoch": 2, "epochs": 3, "epoch_step": 0, "epoch_steps": 0}))
        assert bar.n == 2
        apply(bar, Event("progress", {"epoch": 3, "epochs": 3}))  # a server without step progress
        assert bar.n == 3
