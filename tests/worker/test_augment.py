"""Training-time augmentation: each example its own random draw, evaluation untouched."""

import torch

from core.jobs.hyperparameters import Augmentation
from core.preprocessing import Preprocessing
from tests.worker.test_knobs import train
from worker.augment import batch_augmenter

PREP = Preprocessing(
    raw_shape=(8, 8), in_channels=1, input_size=8, scale=1 / 16, mean=(0.5,), std=(0.25,)
)


def ramp_batch(count: int) -> torch.Tensor:
    """Images brighter to the right, at pixel scale [0, 1] as augmentation sees them (after
    resizing, before normalisation)."""
    image = torch.linspace(0, 1, 8).repeat(8, 1)
    return image.expand(count, 1, 8, 8).clone()


def test_nothing_asked_means_no_augmentation() -> None:
    assert batch_augmenter(Augmentation(), PREP) is None


def test_flips_are_drawn_per_example() -> None:
    augment = batch_augmenter(Augmentation(horizontal_flip=True), PREP)
    assert augment is not None
    torch.manual_seed(0)
    batch = ramp_batch(64)
    out = augment(batch)
    flipped = [bool(torch.allclose(o, b.flip(-1), atol=1e-5)) for o, b in zip(out, batch)]
    kept = [bool(torch.allclose(o, b, atol=1e-5)) for o, b in zip(out, batch)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 10 < sum(flipped) < 54  # about half, each example drawn on its own


def test_padded_random_crops_shift_examples_differently() -> None:
    augment = batch_augmenter(Augmentation(random_crop_padding=2), PREP)
    assert augment is not None
    torch.manual_seed(0)
    out = augment(ramp_batch(32))
    assert out.shape == (32, 1, 8, 8)
    assert len({tuple(o.flatten().round(decimals=3).tolist()) for o in out}) > 3


def test_a_job_with_augmentation_trains_and_evaluates_unaugmented() -> None:
    augmentation = {"random_crop_padding": 2, "brightness": 0.2, "contrast": 0.2}
    result, reports = train({"epochs": 3, "augmentation": augmentation})
    assert reports[-1].metrics[("train", "loss")] < reports[0].metrics[("train", "loss")]
    assert result["test_acc"] > 0.7
