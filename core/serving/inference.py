"""A trained model rebuilt for inference, and the pure steps of one prediction.

Shared by the API's predict path (api/serving.py, which adds the cache and micro-batching) and
by anything else that runs a model over raw samples: nothing here knows HTTP, the database or
settings. Raw samples go through the model's own recorded preprocessing, so serving sees inputs
exactly as training and evaluation did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch import nn

import models
from core import preprocessing
from core.datasets.images import ImageDecodeError, decode_image, pixels_to_raw
from core.errors import InvalidInputError
from core.preprocessing import Preprocessing
from core.serving.schemas import Prediction, PredictResponse, RegressionPrediction


@dataclass(frozen=True)
class LoadedModel:
    """A net in eval mode on its device, with what turns raw samples into its answers."""

    net: nn.Module
    preprocessing: Preprocessing
    class_names: tuple[str, ...]
    task: str = "classification"
    # Nadaraya-Watson predicts by attending over its training examples (keys, values).
    memory: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.memory is not None:
            keys, values = self.memory
            return self.net(inputs.reshape(-1), keys, values)
        return self.net(inputs)

    @cached_property
    def device(self) -> torch.device:
        tensors = [*self.net.parameters(), *self.net.buffers(), *(self.memory or ())]
        return tensors[0].device if tensors else torch.device("cpu")

    @cached_property
    def nbytes(self) -> int:
        """Memory the model holds (parameters, buffers, attention memory): what a cache bounds."""
        tensors = [*self.net.parameters(), *self.net.buffers(), *(self.memory or ())]
        return sum(tensor.numel() * tensor.element_size() for tensor in tensors)


def load_model(payload: dict[str, Any], device: torch.device) -> LoadedModel:
    """Rebuild the exact net a checkpoint describes, load its weights strictly, eval mode."""
    shape = models.NetShape(payload["in_channels"], payload["num_classes"], payload["input_size"])
    net = models.build_net(payload["arch"], payload["config"], shape)
    net.load_state_dict(payload["state_dict"], strict=True)
    net.to(device).eval()
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    memory = None
    if payload.get("train_keys") is not None:
        memory = (payload["train_keys"].to(device), payload["train_values"].to(device))
    return LoadedModel(
        net=net,
        preprocessing=Preprocessing.from_dict(payload["preprocessing"]),
        class_names=tuple(payload["class_names"]),
        task=str(payload.get("task", "classification")),
        memory=memory,
    )


def as_batch(inputs: list[Any], raw_shape: tuple[int, ...]) -> torch.Tensor:
    """One raw sample or a list of them -> (N, *raw_shape), or a 422 with the expected shape.

    numpy converts nested lists about twice as fast as `torch.tensor`, which matters when the
    JSON path, not the forward pass, is most of a small net's request."""
    expected = f"{list(raw_shape)} for one sample or [N, {', '.join(map(str, raw_shape))}] for N"
    try:
        array = np.array(inputs, dtype=np.float32)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"inputs must be a regular numeric array of shape {expected}"
        ) from None
    if array.shape == raw_shape:
        array = array[np.newaxis]
    if array.shape[1:] != raw_shape:
        raise InvalidInputError(f"inputs have shape {list(array.shape)}; expected {expected}")
    if not np.isfinite(array).all():
        raise InvalidInputError("inputs must be finite numbers")
    return torch.from_numpy(array)


def images_batch(
    images: list[tuple[str, bytes]], prep: Preprocessing, *, max_pixels: int
) -> torch.Tensor:
    """Image files -> (N, *raw_shape) raw samples, as the model's dataset stores them.

    Grey or RGB by the model's channels, resized to its raw size if different; a file that does
    not decode is a 422 naming it."""
    samples = []
    for filename, data in images:
        try:
            pixels = decode_image(data, raw_shape=prep.raw_shape, max_pixels=max_pixels)
        except ImageDecodeError as error:
            raise InvalidInputError(f"{filename}: {error}") from None
        samples.append(pixels_to_raw(pixels, scale=prep.scale))
    return torch.stack(samples)


def run_forward(loaded: LoadedModel, raw: torch.Tensor) -> torch.Tensor:
    """Raw samples -> the net's outputs on the CPU: class probabilities, or regression values.

    Runs in whichever thread calls it; `inference_mode` is per thread, so it is entered here."""
    with torch.inference_mode():
        inputs = preprocessing.apply(loaded.preprocessing, raw).to(loaded.device)
        outputs = loaded.forward(inputs)
        if loaded.task == "regression":
            return outputs.reshape(len(raw), -1)[:, 0].cpu()
        return torch.softmax(outputs, dim=1).cpu()


def respond(
    loaded: LoadedModel, model_id: str, outputs: torch.Tensor, *, top_k: int | None
) -> PredictResponse:
    """One request's slice of outputs -> its response (labels, top-k probabilities, values)."""
    if loaded.task == "regression":
        return PredictResponse(
            model_id=model_id,
            predictions=[RegressionPrediction(value=v) for v in outputs.tolist()],
        )
    names = loaded.class_names
    k = min(top_k or len(names), len(names))
    values, indices = outputs.topk(k, dim=1)
    return PredictResponse(
        model_id=model_id,
        predictions=[
            _prediction(row_values, row_indices, names)
            for row_values, row_indices in zip(values.tolist(), indices.tolist(), strict=True)
        ],
    )


def _prediction(
    values: Sequence[float], indices: Sequence[int], names: tuple[str, ...]
) -> Prediction:
    return Prediction(
        class_index=indices[0],
        label=names[indices[0]],
        probabilities={names[i]: v for v, i in zip(values, indices, strict=True)},
    )
