"""The one preprocessing truth: training and inference call the same function on raw samples.

A `Preprocessing` is recorded with the job and saved in the checkpoint, so a model serves raw
inputs (as the dataset stores them) exactly the way its training and evaluation saw them.

Two layouts: images (scale, resize, per-channel normalisation) and tabular rows of features
(the first `input_size` features, scaled, minus `mean` over `std`: one value per feature for an
uploaded CSV, standardised on its train split, or one value for all, 0 and 1, for the course's
synthetic regression data, used as generated).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Preprocessing:
    """Raw sample -> network input: scale, reshape to channels, resize, normalise.

    With `layout="tabular"`, raw rows (N, F) -> (N, input_size): the first `input_size`
    features, times `scale`, minus `mean`, over `std` (one value per feature, or one for all)."""

    raw_shape: tuple[int, ...]
    in_channels: int
    input_size: int
    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    layout: str = "image"  # image | tabular

    def to_dict(self) -> dict[str, Any]:
        """JSON- and `weights_only`-safe form (plain lists and floats).

        `layout` is left out for images, so image jobs record exactly what they always did."""
        data = asdict(self)
        if self.layout == "image":
            del data["layout"]
        return {
            key: list(value) if isinstance(value, tuple) else value for key, value in data.items()
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        return cls(
            raw_shape=tuple(data["raw_shape"]),
            in_channels=int(data["in_channels"]),
            input_size=int(data["input_size"]),
            scale=float(data["scale"]),
            mean=tuple(float(v) for v in data["mean"]),
            std=tuple(float(v) for v in data["std"]),
            layout=str(data.get("layout", "image")),
        )


def tabular_preprocessing(
    raw_shape: tuple[int, ...],
    *,
    input_size: int,
    scale: float = 1.0,
    mean: tuple[float, ...] = (0.0,),
    std: tuple[float, ...] = (1.0,),
) -> Preprocessing:
    """Rows of features: the first `input_size` of them, standardised by `mean` and `std` (by
    default used as they are)."""
    if len(raw_shape) != 1 or not 1 <= input_size <= raw_shape[0]:
        raise ValueError(f"input_size must be 1-{raw_shape[0]} features, got {input_size}")
    return Preprocessing(
        raw_shape=raw_shape,
        in_channels=1,
        input_size=input_size,
        scale=scale,
        mean=mean,
        std=std,
        layout="tabular",
    )


def to_network_scale(
    raw: torch.Tensor, *, in_channels: int, input_size: int, scale: float
) -> torch.Tensor:
    """Scale raw samples (N, *raw_shape) to floats and resize them to (N, C, S, S), on the
    device `raw` is on (a minibatch of uint8 images goes to the GPU compact and grows there)."""
    images = raw.to(torch.float32) * scale
    if images.dim() == 3:  # (N, H, W): one channel
        images = images.unsqueeze(1)
    if images.shape[1] != in_channels:
        raise ValueError(f"expected {in_channels} channel(s), got {images.shape[1]}")
    if images.shape[-2:] != (input_size, input_size):
        images = resize(images, input_size)
    return images


def linear_weights(length: int, size: int, device: torch.device) -> torch.Tensor:
    """(size, length): row i holds the weights that linear interpolation (half-pixel centres,
    as `F.interpolate(..., align_corners=False)`) gives each source pixel for output pixel i."""
    identity = torch.eye(length, device=device).unsqueeze(0)
    return F.interpolate(identity, size=size, mode="linear", align_corners=False)[0].T


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of (N, C, H, W) to (N, C, size, size): `F.interpolate`'s bilinear
    (align_corners=False, no antialiasing), done as its two separable passes, each one matrix
    product (rows, then columns).

    The same values to 2e-7, and on a CPU 5x faster for the small images of the course (a
    batch of 256 digits from 8x8 to 28x28 in 0.5 ms rather than 2.3 ms), which keeps making
    each minibatch on the fly as fast as training on inputs made beforehand."""
    rows = linear_weights(images.shape[-2], size, images.device)
    columns = linear_weights(images.shape[-1], size, images.device)
    return rows @ images @ columns.T


class ChannelMoments:
    """Per-channel mean and std accumulated chunk by chunk (in float64), so the statistics of a
    split larger than memory are read once and never held whole."""

    def __init__(self) -> None:
        self.count = 0
        self.sums: torch.Tensor | None = None
        self.squares: torch.Tensor | None = None

    def add(self, images: torch.Tensor) -> None:
        """Count a chunk of (N, C, H, W) images."""
        values = images.to(torch.float64)
        sums, squares = values.sum(dim=(0, 2, 3)), (values * values).sum(dim=(0, 2, 3))
        self.sums = sums if self.sums is None else self.sums + sums
        self.squares = squares if self.squares is None else self.squares + squares
        self.count += values.numel() // values.shape[1]

    def stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Mean and (unbiased) std of every value of each channel counted so far."""
        assert self.sums is not None and self.squares is not None and self.count > 0
        mean = self.sums / self.count
        if self.count == 1:  # one value per channel: nothing to scale by
            return tuple(mean.tolist()), tuple(1.0 for _ in mean.tolist())
        variance = (self.squares - self.count * mean * mean) / (self.count - 1)
        std = variance.clamp_min(0).sqrt().clamp_min(1e-6)
        return tuple(mean.tolist()), tuple(std.tolist())


def normalise(images: torch.Tensor, prep: Preprocessing) -> torch.Tensor:
    """(images - mean) / std per channel, in place on a fresh (N, C, S, S) batch.

    Python floats, not tensors: building a small tensor on a GPU every step would wait for the
    device, and this is on the training path."""
    for channel, (mean, std) in enumerate(zip(prep.mean, prep.std, strict=True)):
        images[:, channel].sub_(mean).div_(std)
    return images


def apply(
    prep: Preprocessing,
    raw: torch.Tensor,
    *,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Raw samples (N, *raw_shape) -> normalised network input (N, C, S, S), or (N, F) rows.

    The one preprocessing of training (a minibatch at a time, on the training device),
    evaluation and /predict. `augment` (training only) sees the resized images at pixel scale,
    before normalisation."""
    if tuple(raw.shape[1:]) != prep.raw_shape:
        raise ValueError(
            f"expected samples of shape {list(prep.raw_shape)}, got {list(raw.shape[1:])}"
        )
    if prep.layout == "tabular":
        features = raw[:, : prep.input_size].to(torch.float32) * prep.scale
        mean = torch.tensor(prep.mean[: prep.input_size], dtype=torch.float32, device=raw.device)
        std = torch.tensor(prep.std[: prep.input_size], dtype=torch.float32, device=raw.device)
        return (features - mean) / std
    images = to_network_scale(
        raw, in_channels=prep.in_channels, input_size=prep.input_size, scale=prep.scale
    )
    if augment is not None:
        images = augment(images)
    return normalise(images, prep)
