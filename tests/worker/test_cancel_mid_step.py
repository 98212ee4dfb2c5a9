"""A cancel (or the time limit) stops a long step between two layers of its forward pass, not
only between steps: one step of a big net on a big input can take minutes on a CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.factories import job_spec
from worker.engine import fit
from worker.training_state import Callbacks, JobCancelled


def test_a_cancel_stops_the_forward_pass_between_two_layers() -> None:
    asked: list[int] = []

    def should_stop() -> bool:
        # asked before step 1, then before each layer of its forward pass: say stop at the
        # third layer (a paced fake, so no race with the training loop)
        asked.append(len(asked))
        return len(asked) >= 4

    layers_run: list[str] = []
    spec = job_spec(model={"arch": "lenet"}, hyperparameters={"epochs": 1, "batch_size": 64})
    callbacks = Callbacks(should_stop=should_stop)
    torch.nn.modules.module.register_module_forward_hook(
        lambda module, args, output: layers_run.append(type(module).__name__)
    )
    try:
        with pytest.raises(JobCancelled, match="during step 1"):
            fit(
                spec, device=torch.device("cpu"), data_dir=Path("/nonexistent"), callbacks=callbacks
            )
    finally:
        torch.nn.modules.module._global_forward_hooks.clear()
    assert callbacks.progress.done == 0  # the first step never finished
    assert len(asked) == 4 and len(layers_run) == 2  # two layers ran, the third was not begun
