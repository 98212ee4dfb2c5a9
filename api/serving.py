"""Predictions in the API process: load a model once, apply its own preprocessing, answer.

Checkpoints are loaded with `weights_only=True` and verified against their sha256; nets run in
eval mode under `torch.inference_mode()`. Handlers call `predict` from a worker thread, so the
event loop never waits on a forward pass.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

import models
from core import preprocessing, queries
from core.artifacts import ArtifactStore
from core.datasets.images import DEFAULT_MAX_PIXELS, ImageDecodeError, decode_image, pixels_to_raw
from core.db import Database
from core.errors import InvalidInputError
from core.preprocessing import Preprocessing
from core.schemas import Prediction, PredictRequest, PredictResponse, RegressionPrediction


@dataclass(frozen=True)
class LoadedModel:
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


def load_model(payload: dict[str, Any], device: torch.device) -> LoadedModel:
    """Rebuild the exact net a checkpoint describes and load its weights strictly."""
    net = models.get_model(
        payload["arch"],
        in_channels=payload["in_channels"],
        num_classes=payload["num_classes"],
        input_size=payload["input_size"],
        **payload["config"],
    )
    net.load_state_dict(payload["state_dict"], strict=True)
    net.to(device).eval()
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
    """One raw sample or a list of them -> (N, *raw_shape), or a 422 with the expected shape."""
    expected = f"{list(raw_shape)} for one sample or [N, {', '.join(map(str, raw_shape))}] for N"
    try:
        batch = torch.tensor(inputs, dtype=torch.float32)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"inputs must be a regular numeric array of shape {expected}"
        ) from None
    if tuple(batch.shape) == raw_shape:
        batch = batch.unsqueeze(0)
    if tuple(batch.shape[1:]) != raw_shape:
        raise InvalidInputError(f"inputs have shape {list(batch.shape)}; expected {expected}")
    if not torch.isfinite(batch).all():
        raise InvalidInputError("inputs must be finite numbers")
    return batch


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


class Serving:
    """A bounded LRU cache of loaded models and the predict path over it."""

    def __init__(
        self,
        *,
        db: Database,
        store: ArtifactStore,
        device: str,
        capacity: int,
        max_image_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.db = db
        self.max_image_pixels = max_image_pixels
        self.store = store
        self.device = torch.device(device)
        self.capacity = capacity
        self._cache: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model_id: str) -> LoadedModel:
        """The loaded model, from the cache or from its checkpoint."""
        with self._lock:
            if model_id in self._cache:
                self._cache.move_to_end(model_id)
                return self._cache[model_id]
        with self.db.sessions() as session:
            checkpoint = queries.get_model(session, model_id=model_id).checkpoint
        payload = self.store.load_checkpoint(checkpoint.path, sha256=checkpoint.sha256)
        loaded = load_model(payload, self.device)
        with self._lock:
            self._cache[model_id] = loaded
            while len(self._cache) > self.capacity:
                self._cache.popitem(last=False)
        return loaded

    def predict(self, model_id: str, request: PredictRequest) -> PredictResponse:
        """Class probabilities for each raw sample, preprocessed as in training."""
        loaded = self.get(model_id)
        batch = as_batch(request.inputs, loaded.preprocessing.raw_shape)
        return self._respond(model_id, loaded, batch, top_k=request.top_k)

    def predict_images(
        self, model_id: str, images: list[tuple[str, bytes]], *, top_k: int | None
    ) -> PredictResponse:
        """Class probabilities for image files (name, bytes), decoded to the model's raw shape."""
        loaded = self.get(model_id)
        batch = images_batch(images, loaded.preprocessing, max_pixels=self.max_image_pixels)
        return self._respond(model_id, loaded, batch, top_k=top_k)

    def _respond(
        self, model_id: str, loaded: LoadedModel, batch: torch.Tensor, *, top_k: int | None
    ) -> PredictResponse:
        with torch.inference_mode():
            inputs = preprocessing.apply(loaded.preprocessing, batch).to(self.device)
            outputs = loaded.forward(inputs).cpu()
        if loaded.task == "regression":
            values = outputs.reshape(len(batch), -1)[:, 0].tolist()
            return PredictResponse(
                model_id=model_id, predictions=[RegressionPrediction(value=v) for v in values]
            )
        probabilities = torch.softmax(outputs, dim=1)
        k = min(top_k or len(loaded.class_names), len(loaded.class_names))
        return PredictResponse(
            model_id=model_id,
            predictions=[self._prediction(row, loaded.class_names, k) for row in probabilities],
        )

    @staticmethod
    def _prediction(row: torch.Tensor, class_names: tuple[str, ...], top_k: int) -> Prediction:
        values, indices = row.topk(top_k)
        best = int(indices[0])
        return Prediction(
            class_index=best,
            label=class_names[best],
            probabilities={
                class_names[int(i)]: float(v) for v, i in zip(values, indices, strict=True)
            },
        )
