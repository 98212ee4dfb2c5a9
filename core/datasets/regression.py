"""The course's synthetic regression data: generated from a fixed seed, with the book's sizes.

Each dataset keeps its own test split (`RawData.test_from`): the first `n_train` rows train
(a job's `val_fraction` holds some of them out; 0 trains on all, as the book does), the rest test.
Rows are float features used as generated (no normalisation: see `tabular_preprocessing`), and
targets are float values; a net predicts one value per row.

- `poly_regression` (ch. 3.6 Generalization / under- and overfitting): 20 features x^i / i!.
  A job picks the polynomial's degree with `model.input_size`, the number of features (from
  the first) the linear model takes: 2 underfits, 4 matches the true function, 20 (the
  default) overfits.
- `linear_highdim` (ch. 3.7 Weight decay): 200 features, 20 training rows, so that an
  unregularised linear model overfits and weight decay visibly helps.
- `kernel_regression` (ch. 11.2 Attention pooling): one feature; the test inputs are the grid
  0, 0.1, ..., 4.9 with noiseless targets, as the book plots them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from core.datasets.info import DatasetInfo, RawData
from core.datasets.registry import register_dataset

TARGET_NAMES = ("y",)  # a regression dataset's one target: num_classes is 1

POLY_MAX_DEGREE = 20
POLY_TRUE_W = (5.0, 1.2, -3.4, 5.6)  # then zeros
POLY_NOISE = 0.1
POLY_N_TRAIN = POLY_N_TEST = 100
POLY_SEED = 0

HIGHDIM_FEATURES = 200
HIGHDIM_N_TRAIN, HIGHDIM_N_TEST = 20, 100
HIGHDIM_TRUE_W, HIGHDIM_TRUE_B = 0.01, 0.05
HIGHDIM_NOISE = 0.01
HIGHDIM_SEED = 0

KERNEL_N_TRAIN = 50
KERNEL_X_MAX = 5.0
KERNEL_TEST_STEP = 0.1
KERNEL_NOISE = 0.5
KERNEL_SEED = 0


def poly_regression(seed: int = POLY_SEED) -> RawData:
    """y = 5 + 1.2x - 3.4x^2/2! + 5.6x^3/3! + N(0, 0.1^2), features x^i/i! for i < 20, x ~ N(0, 1).

    The features are scaled by i! so that large powers do not dwarf the gradients (as the book)."""
    generator = torch.Generator().manual_seed(seed)
    count = POLY_N_TRAIN + POLY_N_TEST
    x = torch.randn(count, 1, generator=generator, dtype=torch.float64)
    powers = torch.arange(POLY_MAX_DEGREE, dtype=torch.float64)
    factorials = torch.tensor(
        [math.factorial(i) for i in range(POLY_MAX_DEGREE)], dtype=torch.float64
    )
    features = x**powers / factorials
    true_w = torch.zeros(POLY_MAX_DEGREE, dtype=torch.float64)
    true_w[: len(POLY_TRUE_W)] = torch.tensor(POLY_TRUE_W, dtype=torch.float64)
    noise = torch.randn(count, generator=generator, dtype=torch.float64) * POLY_NOISE
    targets = features @ true_w + noise
    return RawData(
        inputs=features.to(torch.float32),
        targets=targets.to(torch.float32),
        test_from=POLY_N_TRAIN,
    )


def linear_highdim(seed: int = HIGHDIM_SEED) -> RawData:
    """y = 0.01 * sum(x) + 0.05 + N(0, 0.01^2), x ~ N(0, I_200): 20 training rows, 100 test."""
    generator = torch.Generator().manual_seed(seed)
    count = HIGHDIM_N_TRAIN + HIGHDIM_N_TEST
    features = torch.randn(count, HIGHDIM_FEATURES, generator=generator)
    noise = torch.randn(count, generator=generator) * HIGHDIM_NOISE
    targets = features @ torch.full((HIGHDIM_FEATURES,), HIGHDIM_TRUE_W) + HIGHDIM_TRUE_B + noise
    return RawData(inputs=features, targets=targets, test_from=HIGHDIM_N_TRAIN)


def kernel_target(x: torch.Tensor) -> torch.Tensor:
    """The function the course's attention pooling recovers: 2 sin x + x^0.8."""
    return 2 * torch.sin(x) + x**0.8


def kernel_regression(seed: int = KERNEL_SEED) -> RawData:
    """50 sorted x ~ U(0, 5) with y = 2 sin x + x^0.8 + N(0, 0.5^2); test x = 0, 0.1, ..., 4.9."""
    generator = torch.Generator().manual_seed(seed)
    x_train, _ = torch.sort(torch.rand(KERNEL_N_TRAIN, generator=generator) * KERNEL_X_MAX)
    y_train = (
        kernel_target(x_train) + torch.randn(KERNEL_N_TRAIN, generator=generator) * KERNEL_NOISE
    )
    x_test = torch.arange(0, KERNEL_X_MAX, KERNEL_TEST_STEP)
    return RawData(
        inputs=torch.cat([x_train, x_test]).unsqueeze(1),
        targets=torch.cat([y_train, kernel_target(x_test)]),
        test_from=KERNEL_N_TRAIN,
    )


def _register(
    name: str, description: str, features: int, generate: Callable[[], RawData], count: int
) -> None:
    register_dataset(
        DatasetInfo(
            name=name,
            description=description,
            raw_shape=(features,),
            in_channels=1,
            class_names=TARGET_NAMES,
            raw_scale=1.0,
            loader=lambda root: generate(),  # generated, not read: `root` is unused
            source="synthetic",
            task="regression",
            count=lambda root: count,
            raw_itemsize=4,
        )
    )


_register(
    "poly_regression",
    f"ch. 3.6 polynomial: {POLY_MAX_DEGREE} features x^i/i!, w = {list(POLY_TRUE_W)} then "
    f"zeros, noise {POLY_NOISE}; {POLY_N_TRAIN} train / {POLY_N_TEST} test rows "
    "(model.input_size = features used: 2 underfit, 4 fit, 20 overfit)",
    POLY_MAX_DEGREE,
    poly_regression,
    POLY_N_TRAIN + POLY_N_TEST,
)
_register(
    "linear_highdim",
    f"ch. 3.7 weight decay: {HIGHDIM_FEATURES} features, y = {HIGHDIM_TRUE_W} * sum(x) + "
    f"{HIGHDIM_TRUE_B} + noise {HIGHDIM_NOISE}; {HIGHDIM_N_TRAIN} train / {HIGHDIM_N_TEST} "
    "test rows",
    HIGHDIM_FEATURES,
    linear_highdim,
    HIGHDIM_N_TRAIN + HIGHDIM_N_TEST,
)
_register(
    "kernel_regression",
    f"ch. 11.2 attention pooling: {KERNEL_N_TRAIN} sorted x ~ U(0, 5), y = 2 sin x + x^0.8 + "
    f"noise {KERNEL_NOISE}; test x = 0, 0.1, ..., 4.9 with noiseless targets",
    1,
    kernel_regression,
    KERNEL_N_TRAIN + round(KERNEL_X_MAX / KERNEL_TEST_STEP),
)
