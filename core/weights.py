"""Reading uploaded state_dicts safely, and checking them against an architecture.

`.pt` files load with `weights_only=True` (tensors and plain containers only, no code) and
`.safetensors` with safetensors; either must load with `strict=True` into the declared net.
"""

from __future__ import annotations

import io
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as safetensors_load

import models
from core.errors import InvalidInputError
from core.model_options import check_options
from core.names import check_label

WEIGHT_SUFFIXES = (".pt", ".pth", ".safetensors")


def read_state_dict(filename: str, data: bytes) -> dict[str, torch.Tensor]:
    """The tensors of an uploaded file, or a 422 that says why it is not a state_dict."""
    check_label(filename, what="the file name")
    if not filename.endswith(WEIGHT_SUFFIXES):
        raise InvalidInputError(f"{filename}: expected a {', '.join(WEIGHT_SUFFIXES)} file")
    if filename.endswith(".safetensors"):
        try:
            return dict(safetensors_load(data))
        except (SafetensorError, ValueError) as error:
            raise InvalidInputError(f"{filename}: not a safetensors file ({error})") from None
    try:
        loaded: Any = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001  (any refusal of the loader is the file's fault)
        raise InvalidInputError(
            f"{filename}: not loadable with weights_only=True ({type(error).__name__}); "
            "save it with torch.save(net.state_dict(), path)"
        ) from None
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]  # a full checkpoint: take its weights
    if not isinstance(loaded, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items()
    ):
        raise InvalidInputError(f"{filename}: expected a mapping of parameter names to tensors")
    return loaded


def check_loads(
    state_dict: dict[str, torch.Tensor],
    *,
    arch: str,
    config: dict[str, Any],
    in_channels: int,
    num_classes: int,
    input_size: int,
) -> None:
    """Refuse (422) a state_dict that does not load strictly into the declared architecture.

    The net is built on the meta device: shapes only, so a config declaring a net far larger
    than the file (or than memory) costs nothing to refuse."""
    try:
        check_options(arch, config)
        with torch.device("meta"):
            net = models.get_model(
                arch,
                in_channels=in_channels,
                num_classes=num_classes,
                input_size=input_size,
                **config,
            )
    except ValueError as error:  # unknown arch, options it does not take or out of bounds
        raise InvalidInputError(str(error)) from None
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong_shape = [
        f"{name} {list(state_dict[name].shape)} (expected {list(tensor.shape)})"
        for name, tensor in expected.items()
        if name in state_dict and state_dict[name].shape != tensor.shape
    ]
    problems = [
        f"missing: {', '.join(missing[:10])}" if missing else "",
        f"unexpected: {', '.join(unexpected[:10])}" if unexpected else "",
        f"wrong shape: {', '.join(wrong_shape[:10])}" if wrong_shape else "",
    ]
    if any(problems):
        raise InvalidInputError(
            f"the state_dict does not load into {arch} ({in_channels} channel(s), "
            f"{num_classes} classes): " + "; ".join(p for p in problems if p)
        )
