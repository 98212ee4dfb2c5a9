"""A trained net's parameters as people inspect them (ch. 6.2 Parameter Management).

Statistics per tensor, one tensor's values, and the `state_dict` as a `.pt` or `.safetensors`
file that loads back with `torch.load(..., weights_only=True)` or `safetensors.torch.load`.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any, Literal

import torch
from safetensors.torch import save as safetensors_save

from core.errors import NotFoundError

StateDictFormat = Literal["pt", "safetensors"]
MAX_VALUES = 1_000_000


def tensor_stats(name: str, tensor: torch.Tensor) -> dict[str, Any]:
    """Shape, dtype and summary statistics of one tensor (population std: defined for 1 value)."""
    values = tensor.detach().to("cpu", torch.float64)
    empty = values.numel() == 0
    return {
        "name": name,
        "shape": list(tensor.shape),
        "dtype": str(tensor.dtype).removeprefix("torch."),
        "numel": tensor.numel(),
        "mean": None if empty else values.mean().item(),
        "std": None if empty else values.std(correction=0).item(),
        "min": None if empty else values.min().item(),
        "max": None if empty else values.max().item(),
        "l2_norm": values.norm().item(),
    }


def parameter_table(state_dict: Mapping[str, torch.Tensor]) -> list[dict[str, Any]]:
    """Every tensor of a state_dict (parameters and buffers), in state_dict order."""
    return [tensor_stats(name, tensor) for name, tensor in state_dict.items()]


def tensor_values(
    state_dict: Mapping[str, torch.Tensor], name: str, *, limit: int
) -> dict[str, Any]:
    """One tensor's values, flattened in row-major order, the first `limit` of them."""
    if name not in state_dict:
        raise NotFoundError(f"no tensor {name!r}; the tensors are: {', '.join(state_dict)}")
    flat = state_dict[name].detach().cpu().reshape(-1)
    return {
        **tensor_stats(name, state_dict[name]),
        "values": flat[:limit].tolist(),
        "truncated": flat.numel() > limit,
    }


def serialise_state_dict(state_dict: Mapping[str, torch.Tensor], fmt: StateDictFormat) -> bytes:
    """The state_dict as file bytes in the asked format (tensors made contiguous, on the CPU)."""
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in state_dict.items()}
    if fmt == "safetensors":
        return bytes(safetensors_save(tensors))
    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    return buffer.getvalue()
