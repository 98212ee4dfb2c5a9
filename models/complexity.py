"""How big and how costly a net is: parameters, bytes, FLOPs, and the course's layer printout.

The course compares its nets by parameter count and FLOPs (ch. 8.1: AlexNet has ~10x LeNet's
parameters and ~250x its FLOPs) and prints each layer's output shape (ch. 7.6, 8.x). FLOPs are
counted by PyTorch's own `FlopCounterMode` rather than by hand formulas, so every layer type it
knows is counted the same way (2 FLOPs per multiply-add; element-wise ops, pooling, BatchNorm
and activations count as zero).

The dummy forward passes run on the meta device: only shapes are computed, so measuring VGG at
224x224 costs nothing and the net's own weights are neither copied nor touched.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(net: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of scalars in the net's parameters (all of them, or those with requires_grad)."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad or not trainable_only)


def weight_bytes(net: nn.Module) -> int:
    """Bytes the net's state takes: parameters plus buffers (BatchNorm statistics), as saved."""
    tensors = [*net.parameters(), *net.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


@contextmanager
def _eval_mode(net: nn.Module) -> Iterator[None]:
    """Eval mode for the measurement (a batch of 1 would trip BatchNorm1d), then restore."""
    modes = {module: module.training for module in net.modules()}
    net.eval()
    try:
        yield
    finally:
        for module, training in modes.items():
            module.training = training


def _meta_forward(net: nn.Module, input_shape: Sequence[int]) -> Any:
    """Run `net` on a meta-device input of `input_shape`, with meta copies of its state."""
    state = {
        name: torch.empty_like(tensor, device="meta")
        for name, tensor in [*net.named_parameters(), *net.named_buffers()]
    }
    inputs = torch.empty(tuple(input_shape), device="meta")
    with _eval_mode(net):
        return functional_call(net, state, (inputs,))


def forward_flops(net: nn.Module, input_shape: Sequence[int]) -> int:
    """FLOPs of one forward pass on an input of `input_shape`, batch dimension included.

    Pass (1, C, H, W) for the cost of one image; the count grows linearly with the batch.
    """
    with FlopCounterMode(display=False) as counter:
        _meta_forward(net, input_shape)
    return int(counter.get_total_flops())


def _shape_of(output: Any) -> Any:
    """A tensor's shape as a tuple; for tuple/list outputs, the list of their shapes."""
    if isinstance(output, Tensor):
        return tuple(output.shape)
    if isinstance(output, (tuple, list)):
        return [_shape_of(item) for item in output]
    return None


def layer_table(net: nn.Module, input_shape: Sequence[int]) -> list[dict[str, Any]]:
    """One row per leaf layer, in execution order: name, type, output_shape, parameters.

    Like the course's shape printout (`for layer in net: X = layer(X); print(...)`), but for
    nested nets too. Leaf layers are modules without children, plus any module that owns
    parameters directly, so the `parameters` column sums to `count_parameters(net)` when each
    layer runs once. Functional calls inside a block's forward (F.relu) have no row.
    """
    rows: list[dict[str, Any]] = []

    def recorder(name: str) -> Any:
        def hook(module: nn.Module, _inputs: Any, output: Any) -> None:
            rows.append(
                {
                    "name": name,
                    "type": type(module).__name__,
                    "output_shape": _shape_of(output),
                    "parameters": sum(p.numel() for p in module.parameters(recurse=False)),
                }
            )

        return hook

    handles = [
        module.register_forward_hook(recorder(name))
        for name, module in net.named_modules()
        if not any(True for _ in module.children()) or any(module.parameters(recurse=False))
    ]
    try:
        _meta_forward(net, input_shape)
    finally:
        for handle in handles:
            handle.remove()
    return rows


def _numel(shape: Any) -> int:
    """Scalars of an output shape (a tuple), or of each shape of a tuple/list output."""
    if isinstance(shape, tuple):
        count = 1
        for side in shape:
            count *= side
        return count
    if isinstance(shape, list):
        return sum(_numel(item) for item in shape)
    return 0


def activation_elements(net: nn.Module, input_shape: Sequence[int]) -> int:
    """Scalars the leaf layers output in one forward pass on `input_shape`: about what training
    keeps for the backward pass (an upper bound where activations work in place)."""
    return sum(_numel(row["output_shape"]) for row in layer_table(net, input_shape))
