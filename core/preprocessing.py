"""The one preprocessing truth: training and inference call the same function on raw samples.

A `Preprocessing` is recorded with the job and saved in the checkpoint, so a model serves raw
inputs (as the dataset stores them) exactly the way its training and evaluation saw them.

Two layouts: images (scale, resize, per-channel normalisation) and tabular rows of features
(the first `input_size` features, scaled, minus `mean` over `std`: one value per feature for an
uploaded CSV, standardised on its train split, or one value for all, 0 and 1, for the course's
synthetic regression data, used as generated).
"""

from __future__ import annotations

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
    """Scale raw samples (N, *raw_shape) to floats and resize them to (N, C, S, S)."""
    images = raw.to(torch.float32) * scale
    if images.dim() == 3:  # (N, H, W): one channel
        images = images.unsqueeze(1)
    if images.shape[1] != in_channels:
        raise ValueError(f"expected {in_channels} channel(s), got {images.shape[1]}")
    if images.shape[-2:] != (input_size, input_size):
        images = F.interpolate(
            images, size=(input_size, input_size), mode="bilinear", align_corners=False
        )
    return images


def feature_stats(rows: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-feature mean and std of (N, F) rows: the standardisation of a CSV's train split."""
    values = rows.to(torch.float32)
    std = values.std(dim=0) if len(values) > 1 else torch.ones(values.shape[1])
    return tuple(values.mean(dim=0).tolist()), tuple(std.clamp_min(1e-6).tolist())


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of (N, C, H, W) images: the normalisation of the train split."""
    mean = images.mean(dim=(0, 2, 3))
    std = images.std(dim=(0, 2, 3)).clamp_min(1e-6)
    return tuple(mean.tolist()), tuple(std.tolist())


def apply(prep: Preprocessing, raw: torch.Tensor) -> torch.Tensor:
    """Raw samples (N, *raw_shape) -> normalised network input (N, C, S, S), or (N, F) rows."""
    if tuple(raw.shape[1:]) != prep.raw_shape:
        raise ValueError(
            f"expected samples of shape {list(prep.raw_shape)}, got {list(raw.shape[1:])}"
        )
    if prep.layout == "tabular":
        features = raw[:, : prep.input_size].to(torch.float32) * prep.scale
        mean = torch.tensor(prep.mean[: prep.input_size], dtype=torch.float32)
        std = torch.tensor(prep.std[: prep.input_size], dtype=torch.float32)
        return (features - mean) / std
    images = to_network_scale(
        raw, in_channels=prep.in_channels, input_size=prep.input_size, scale=prep.scale
    )
    mean = torch.tensor(prep.mean, dtype=images.dtype).view(1, -1, 1, 1)
    std = torch.tensor(prep.std, dtype=images.dtype).view(1, -1, 1, 1)
    return (images - mean) / std
