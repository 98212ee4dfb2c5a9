"""A model exported for runtimes without this service: ONNX or TorchScript, plus a sidecar.

The exported graph is the net alone (normalised input -> logits), as other runtimes expect; the
preprocessing it was trained with goes beside it (the sidecar, and the response's headers), so a
client can reproduce exactly what `/predict` does to raw samples.
"""

from __future__ import annotations

import copy
import io
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.errors import InvalidInputError
from core.registry.schemas import ExportFormat
from core.serving.inference import LoadedModel

INPUT_NAME, OUTPUT_NAME = "input", "output"
MEDIA_TYPES: dict[str, str] = {
    "onnx": "application/octet-stream",
    "torchscript": "application/octet-stream",
}
SUFFIXES: dict[str, str] = {"onnx": "onnx", "torchscript": "pt"}


def input_shape(loaded: LoadedModel) -> list[int]:
    """The net's input per sample, after preprocessing: (C, S, S) images or (F,) rows."""
    prep = loaded.preprocessing
    if prep.layout == "tabular":
        return [prep.input_size]
    return [prep.in_channels, prep.input_size, prep.input_size]


def sidecar(loaded: LoadedModel, *, model_id: str, arch: str) -> dict[str, Any]:
    """Everything but the weights a runtime needs to answer as `/predict` does."""
    prep = loaded.preprocessing
    if prep.layout == "tabular":
        steps = [
            f"keep the first {prep.input_size} features of each raw row",
            f"multiply by scale ({prep.scale})",
            "subtract mean, divide by std (one value per feature, or one for all of them)",
        ]
    else:
        steps = [
            f"raw sample of shape {list(prep.raw_shape)} as float32, times scale ({prep.scale})",
            f"as (N, {prep.in_channels}, H, W); if H, W != {prep.input_size}: resize to "
            f"{prep.input_size}x{prep.input_size}, bilinear, align_corners=False",
            "subtract mean, divide by std, per channel",
        ]
    regression = loaded.task == "regression"
    return {
        "model_id": model_id,
        "arch": arch,
        "task": loaded.task,
        "input": {"name": INPUT_NAME, "shape": ["N", *input_shape(loaded)], "dtype": "float32"},
        "output": {
            "name": OUTPUT_NAME,
            "shape": ["N", 1 if regression else len(loaded.class_names)],
            "meaning": "predicted value"
            if regression
            else "logits; softmax over dim 1 gives the class probabilities",
        },
        "preprocessing": {**prep.to_dict(), "layout": prep.layout, "steps": steps},
        "class_names": list(loaded.class_names),
    }


def export(loaded: LoadedModel, fmt: ExportFormat) -> bytes:
    """The net as ONNX (torch.export-based exporter, dynamic batch) or TorchScript bytes."""
    if loaded.memory is not None:
        raise InvalidInputError(
            "attention-pooling (nadaraya_watson) models attend over their stored training "
            "examples and cannot be exported; predict with POST /v1/models/{id}/predict"
        )
    net = copy.deepcopy(loaded.net).cpu().eval()
    example = torch.zeros(2, *input_shape(loaded))
    if fmt == "onnx":
        return _onnx(net, example)
    return _torchscript(net, example)


def _onnx(net: nn.Module, example: torch.Tensor) -> bytes:
    batch = torch.export.Dim("batch", min=1, max=65536)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        torch.onnx.export(
            net,
            (example,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
            dynamo=True,
            external_data=False,
            verbose=False,
        )
        return path.read_bytes()


def _torchscript(net: nn.Module, example: torch.Tensor) -> bytes:
    # torch.jit is deprecated in favour of torch.export, but it is still what C++ (libtorch)
    # and older runtimes load; its FutureWarnings are not the client's concern.
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(net, example)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
    return buffer.getvalue()
