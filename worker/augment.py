"""Training-time image augmentation with torchvision's transforms v2 (ch. 14.1 Image Augmentation).

Each minibatch is augmented on the training device after it is resized and before it is
normalised (see `core.preprocessing.apply`), at pixel scale [0, 1]; every example gets its own
random draw of the transforms (as a per-item dataset transform would). Evaluation and serving
never augment.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision.transforms import v2

from core.jobs.hyperparameters import Augmentation
from core.preprocessing import Preprocessing

BatchTransform = Callable[[torch.Tensor], torch.Tensor]


def build_transform(augmentation: Augmentation, input_size: int) -> v2.Compose:
    steps: list[v2.Transform] = []
    if augmentation.random_resized_crop_scale is not None:
        scale = (augmentation.random_resized_crop_scale, 1.0)
        steps.append(v2.RandomResizedCrop(input_size, scale=scale, antialias=True))
    if augmentation.random_crop_padding:
        steps.append(v2.RandomCrop(input_size, padding=augmentation.random_crop_padding))
    if augmentation.horizontal_flip:
        steps.append(v2.RandomHorizontalFlip())
    if augmentation.brightness or augmentation.contrast:
        steps.append(
            v2.ColorJitter(brightness=augmentation.brightness, contrast=augmentation.contrast)
        )
    return v2.Compose(steps)


def batch_augmenter(augmentation: Augmentation, prep: Preprocessing) -> BatchTransform | None:
    """A function augmenting an (N, C, H, W) batch at pixel scale, or None when nothing is
    asked."""
    if not augmentation.enabled:
        return None
    transform = build_transform(augmentation, prep.input_size)

    def augment(pixels: torch.Tensor) -> torch.Tensor:
        return torch.stack([transform(image) for image in pixels.clamp(0.0, 1.0)])

    return augment
