"""Reading uploaded state_dicts safely, and checking them against an architecture.

`.pt` files load with `weights_only=True` (tensors and plain containers only, no code) and
`.safetensors` with safetensors; either must load with `strict=True` into the declared net.

Neither the file nor the net may take more memory than `max_bytes`, and both are measured before
anything is allocated: the net is built on the meta device (shapes only), and the file's
expanded size is read from its headers (a `.pt` is a zip whose members may be compressed: a
600 KB file can hold 600 MB of zeros; a `.safetensors` header lists every tensor's bytes).
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as safetensors_load
from torch import nn

import models
from core.errors import InvalidInputError, TooLargeError
from core.names import check_label
from core.registry.model_options import check_options

WEIGHT_SUFFIXES = (".pt", ".pth", ".safetensors")
SAFETENSORS_HEADER_MAX = 100_000_000  # the safetensors library's own bound on its JSON header


def safetensors_bytes(filename: str, data: bytes) -> int:
    """The bytes a safetensors file's tensors take, from its header alone."""
    try:
        (length,) = struct.unpack("<Q", data[:8])
        if length > min(SAFETENSORS_HEADER_MAX, len(data) - 8):
            raise ValueError("header length past the end of the file")
        header = json.loads(data[8 : 8 + length])
        spans = [entry["data_offsets"] for key, entry in header.items() if key != "__metadata__"]
        return sum(int(end) - int(start) for start, end in spans)
    except (struct.error, ValueError, TypeError, KeyError, AttributeError) as error:
        raise InvalidInputError(f"{filename}: not a safetensors file ({error})") from None


def zip_bytes(filename: str, data: bytes) -> int:
    """The bytes a torch.save file expands to: the sizes its zip directory declares, which are
    the most its reader will unpack."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return sum(member.file_size for member in archive.infolist())
    except zipfile.BadZipFile:
        raise InvalidInputError(
            f"{filename}: not a torch.save file (the zip format PyTorch writes by default); save "
            "it with torch.save(net.state_dict(), path)"
        ) from None


def check_expanded_size(filename: str, data: bytes, *, max_bytes: int) -> None:
    """413 for a file whose tensors would take more than `max_bytes` once loaded."""
    if filename.endswith(".safetensors"):
        expanded = safetensors_bytes(filename, data)
    else:
        expanded = zip_bytes(filename, data)
    if expanded > max_bytes:
        raise TooLargeError(
            f"{filename} expands to {expanded} bytes when loaded; uploaded weights may take at "
            f"most {max_bytes} bytes (D2L_WEIGHTS_MAX_BYTES)"
        )


def read_state_dict(filename: str, data: bytes, *, max_bytes: int) -> dict[str, torch.Tensor]:
    """The tensors of an uploaded file, or a 422 that says why it is not a state_dict (413 when
    they would take more than `max_bytes`, checked before loading)."""
    check_label(filename, what="the file name")
    if not filename.endswith(WEIGHT_SUFFIXES):
        raise InvalidInputError(f"{filename}: expected a {', '.join(WEIGHT_SUFFIXES)} file")
    check_expanded_size(filename, data, max_bytes=max_bytes)
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


def describe_net(
    *,
    arch: str,
    config: dict[str, Any],
    in_channels: int,
    num_classes: int,
    input_size: int,
    max_bytes: int,
) -> nn.Module:
    """The declared net on the meta device (shapes, no memory); 422 for options it refuses
    (unknown, or out of their bounds) and when its weights would take more than `max_bytes`
    (a rule about the sizes asked for, like a job's parameter budget: no body is too large)."""
    try:
        check_options(arch, config)
        with torch.device("meta"):
            net = models.build_net(
                arch, config, models.NetShape(in_channels, num_classes, input_size)
            )
    except ValueError as error:  # unknown arch, options it does not take or out of bounds
        raise InvalidInputError(str(error)) from None
    size = models.weight_bytes(net)
    if size > max_bytes:
        raise InvalidInputError(
            f"{arch} with {in_channels} channel(s), {num_classes} classes, input_size "
            f"{input_size} and config {config} has {models.count_parameters(net)} parameters "
            f"({size} bytes of weights); uploaded weights may take at most {max_bytes} bytes "
            "(D2L_WEIGHTS_MAX_BYTES)"
        )
    return net


def check_loads(
    state_dict: dict[str, torch.Tensor],
    *,
    net: nn.Module,
    arch: str,
    in_channels: int,
    num_classes: int,
) -> None:
    """Refuse (422) a state_dict that does not load strictly into `net`, the declared
    architecture as `describe_net` builds it (on the meta device: names and shapes suffice)."""
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
