"""`fake_images`: torchvision's FakeData with fixed sizes and seed, a real image path offline.

Random pixels carry no signal, so accuracy stays at chance: it is for exercising the pipeline
(uint8 RGB images, resize, normalisation, checkpoints, image predictions), not for learning.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import torch
from torchvision.datasets import FakeData

from core.datasets.info import DatasetInfo, RawData
from core.datasets.registry import register_dataset

FAKE_IMAGE_SHAPE = (3, 32, 32)
FAKE_CLASSES = 10
FAKE_COUNT = 600
FAKE_SEED = 0  # FakeData's random_offset: sample i is drawn from seed i + offset


@cache
def load_fake_images(root: Path | None = None) -> RawData:
    """600 seeded random 3x32x32 uint8 images in 10 classes; `root` is not read."""
    fake = FakeData(
        size=FAKE_COUNT,
        image_size=FAKE_IMAGE_SHAPE,
        num_classes=FAKE_CLASSES,
        random_offset=FAKE_SEED,
    )
    images, labels = [], []
    for index in range(len(fake)):
        image, label = fake[index]
        images.append(np.asarray(image, dtype=np.uint8).transpose(2, 0, 1))  # HWC -> CHW
        labels.append(label)
    return RawData(
        inputs=torch.from_numpy(np.stack(images)),
        targets=torch.tensor(labels, dtype=torch.int64),
    )


register_dataset(
    DatasetInfo(
        name="fake_images",
        description=(
            f"torchvision FakeData: {FAKE_COUNT} seeded random "
            f"{'x'.join(map(str, FAKE_IMAGE_SHAPE))} images, {FAKE_CLASSES} classes (offline)"
        ),
        raw_shape=FAKE_IMAGE_SHAPE,
        in_channels=FAKE_IMAGE_SHAPE[0],
        class_names=tuple(f"class_{index}" for index in range(FAKE_CLASSES)),
        raw_scale=1 / 255,
        loader=load_fake_images,
        source="synthetic",
        count=lambda root: FAKE_COUNT,
    )
)
