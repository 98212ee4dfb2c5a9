"""GPU code paths (the course's try_gpu chapter); skipped, with the reason, on a machine without one."""

from pathlib import Path

import pytest
import torch

from tests.factories import job_spec
from worker import devices
from worker.engine import fit

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device on this machine"
)


def test_auto_picks_the_first_gpu_and_the_inventory_lists_it() -> None:
    assert devices.resolve_device("auto") == torch.device("cuda:0")
    assert devices.try_all_gpus()[0] == torch.device("cuda:0")
    gpu = devices.inventory()[0]
    assert gpu["type"] == "cuda" and int(gpu["memory_bytes"]) > 0  # type: ignore[call-overload]


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_training_on_the_gpu_in_every_precision(precision: str) -> None:
    spec = job_spec(
        model={"arch": "lenet", "config": {"activation": "relu"}},
        hyperparameters={
            "epochs": 3,
            "batch_size": 64,
            "lr": 0.1,
            "precision": precision,
            "channels_last": True,
        },
        device="cuda:0",
    )
    result = fit(spec, device=torch.device("cuda:0"), data_dir=Path("/nonexistent"))
    assert result["test_acc"] > 0.8


def test_a_missing_gpu_index_is_refused() -> None:
    with pytest.raises(devices.DeviceUnavailableError, match="cuda:99"):
        devices.resolve_device("cuda:99")
