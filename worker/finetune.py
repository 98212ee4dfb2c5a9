"""Starting from trained weights (ch. 14.2 Fine-Tuning): new head, frozen layers, slower backbone.

The source weights load strictly into the job's net, except the output layer when the number of
classes differs: that layer keeps its fresh init (the job's init scheme, Xavier by default, as the
course's new `fc`). Frozen parameters leave the optimiser; the rest of the backbone learns at
`lr x backbone_lr_mult`, the head at `lr`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from core.jobs.schemas import FineTune

CONV_AND_NORM = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm)


@dataclass(frozen=True)
class Warmstart:
    """The source weights and how the job fine-tunes them."""

    state_dict: dict[str, torch.Tensor]
    settings: FineTune


@dataclass(frozen=True)
class WarmstartReport:
    head: list[str]
    head_replaced: bool
    frozen: list[str]
    trainable_parameters: int

    def as_result(self) -> dict[str, Any]:
        return {
            "head": self.head,
            "head_replaced": self.head_replaced,
            "frozen": self.frozen,
            "trainable_parameters": self.trainable_parameters,
        }


def head_names(net: nn.Module, num_classes: int) -> list[str]:
    """Parameter names of the output layer: the last layer whose weight has num_classes rows."""
    for module_name, module in reversed(list(net.named_modules())):
        weight = module._parameters.get("weight")
        if weight is not None and weight.shape[0] == num_classes:
            return [f"{module_name}.{name}" for name, p in module.named_parameters(recurse=False)]
    raise ValueError(f"found no output layer with {num_classes} outputs")


def load_source(net: nn.Module, source: dict[str, torch.Tensor], head: list[str]) -> bool:
    """Copy the source weights in; a head of another shape stays fresh. True if replaced."""
    target = net.state_dict()
    mismatched = [n for n, t in target.items() if n in source and source[n].shape != t.shape]
    wrong_shape = sorted(set(mismatched) - set(head))
    if wrong_shape or set(target) != set(source):
        missing = sorted(set(target) - set(source))[:10]
        raise ValueError(
            f"the source weights do not fit this net: wrong shape {wrong_shape}, missing {missing}"
        )
    merged = {n: (t if n in mismatched else source[n]) for n, t in target.items()}
    net.load_state_dict(merged, strict=True)
    return bool(mismatched)


def frozen_names(net: nn.Module, settings: FineTune, head: list[str]) -> list[str]:
    """The parameters `freeze` names: prefixes, every conv/norm layer, or all but the head."""
    names = [name for name, _ in net.named_parameters()]
    if settings.freeze is None:
        return []
    if settings.freeze == "all_but_head":
        return [name for name in names if name not in head]
    if settings.freeze == "features":
        return [
            f"{module_name}.{name}" if module_name else name
            for module_name, module in net.named_modules()
            if isinstance(module, CONV_AND_NORM)
            for name, _ in module.named_parameters(recurse=False)
        ]
    return [name for name in names if any(name.startswith(p) for p in settings.freeze)]


def apply_warmstart(
    net: nn.Module, warmstart: Warmstart, *, num_classes: int, lr: float
) -> tuple[list[dict[str, Any]], WarmstartReport]:
    """Load, freeze, and split the parameters into head and backbone optimiser groups."""
    head = head_names(net, num_classes)
    replaced = load_source(net, warmstart.state_dict, head)
    frozen = set(frozen_names(net, warmstart.settings, head))
    for name, parameter in net.named_parameters():
        parameter.requires_grad_(name not in frozen)
    trainable = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in trainable if n in head], "lr": lr},
        {
            "params": [p for n, p in trainable if n not in head],
            "lr": lr * warmstart.settings.backbone_lr_mult,
        },
    ]
    report = WarmstartReport(
        head=head,
        head_replaced=replaced,
        frozen=sorted(frozen),
        trainable_parameters=sum(p.numel() for _, p in trainable),
    )
    return [group for group in groups if group["params"]], report
