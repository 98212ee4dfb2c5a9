"""Minibatches made at network size on the device from compact raw samples: the same inputs as
the whole-split path and as /predict, and the same run whether the data are resident or
streamed from disk by loader processes."""

from __future__ import annotations

from pathlib import Path

import torch

import models
from core.datasets import load_raw, prepare
from core.preprocessing import apply
from core.serving.inference import LoadedModel, run_forward
from tests.factories import job_spec
from worker.batches import DataPlan, Feed
from worker.engine import fit

CPU = torch.device("cpu")
NOWHERE = Path("/nonexistent")  # digits ship with scikit-learn


def test_a_minibatch_made_on_the_device_is_what_the_whole_split_gave_and_what_predict_feeds() -> (
    None
):
    data = prepare(
        "digits", root=NOWHERE, input_size=28, val_fraction=0.1, test_fraction=0.2, seed=0
    )
    raw = load_raw("digits", root=NOWHERE)
    whole_split = apply(data.preprocessing, raw.inputs[data.test.rows])  # every sample at once
    positions = torch.tensor([5, 0, 17, 3, 200])
    (inputs, targets), *_ = Feed(device=CPU).batches(data.test, [positions])
    assert inputs.shape == (5, 1, 28, 28)
    torch.testing.assert_close(inputs, whole_split[positions], rtol=0, atol=1e-6)
    assert torch.equal(targets, raw.targets[data.test.rows[positions]])

    net = models.get_model("lenet", in_channels=1, num_classes=10, input_size=28).eval()
    fed: list[torch.Tensor] = []
    net.register_forward_pre_hook(lambda module, args: fed.append(args[0]))
    loaded = LoadedModel(net=net, preprocessing=data.preprocessing, class_names=data.class_names)
    run_forward(loaded, raw.inputs[data.test.rows[positions]])  # the raw samples, as posted
    torch.testing.assert_close(fed[0], inputs, rtol=0, atol=1e-6)


def test_streamed_data_train_exactly_as_resident_data_with_the_same_seed() -> None:
    spec = job_spec(
        model={"arch": "mlp", "config": {"hidden_sizes": [32]}},
        hyperparameters={"epochs": 2, "batch_size": 64, "lr": 0.1, "seed": 3},
    )
    resident = fit(spec, device=CPU, data_dir=NOWHERE)
    streamed = fit(
        spec,
        device=CPU,
        data_dir=NOWHERE,
        plan=DataPlan(resident_max_bytes_cpu=0, loader_workers=2),  # no bytes may stay resident
    )
    assert resident["data"]["mode"] == "resident" and streamed["data"]["mode"] == "streamed"
    assert streamed["data"]["loader_workers"] == 2
    assert resident["data"]["raw_bytes"] == 1797 * 8 * 8 * 4  # the digits' float32 grey levels
    for key in ("train_loss", "train_acc", "val_acc", "test_loss", "test_acc", "steps"):
        assert streamed[key] == resident[key], key
