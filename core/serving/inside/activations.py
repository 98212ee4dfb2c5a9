"""What a net's layers make of one input: every conv/pool stage's feature maps, the first conv
layer's kernels, and which input pixels decide the answer (gradient saliency and Grad-CAM).

Each view runs on its own copy of the net: the loaded model is shared with the predict path's
threads, and forward hooks registered on it would fire in (and slow) their passes too. A copy
costs milliseconds beside the view's own forward and backward pass.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core import preprocessing
from core.errors import InvalidInputError
from core.serving.inference import LoadedModel
from core.serving.inside.schemas import FeatureMap, FiltersOut, PredictionOut

STAGE_TYPES = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)
GLOBAL_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
DECIMALS = 4


@dataclass(frozen=True)
class Recorded:
    """A module's 4-D output during one forward pass, in the order modules finished."""

    name: str
    module: nn.Module
    output: torch.Tensor


def check_image_classifier(loaded: LoadedModel, *, view: str) -> None:
    """422 where the view makes no sense: attention pooling, rows of features, no classes."""
    if loaded.memory is not None:
        raise InvalidInputError(
            f"{view}: this is an attention-pooling model (ch. 11.2); it has no layers to look "
            "into; its attention.png shows what it attends to"
        )
    if loaded.preprocessing.layout != "image":
        raise InvalidInputError(f"{view}: the model takes rows of features, not images")
    if loaded.task != "classification":
        raise InvalidInputError(f"{view}: the model is a regression; it has no classes")


def rounded(tensor: torch.Tensor) -> list:  # type: ignore[type-arg]
    """Values for JSON, to DECIMALS places (in float64, so they print short)."""
    return torch.round(tensor.detach().double(), decimals=DECIMALS).tolist()  # type: ignore[no-any-return]


@contextmanager
def recording(net: nn.Module) -> Iterator[list[Recorded]]:
    """Record every module's 4-D output while the block runs (hooks removed after)."""
    records: list[Recorded] = []
    seen: dict[str, int] = {}

    def hook_for(name: str):  # type: ignore[no-untyped-def]
        def hook(module: nn.Module, _inputs: object, output: object) -> None:
            if isinstance(output, torch.Tensor) and output.dim() == 4:
                calls = seen[name] = seen.get(name, 0) + 1
                label = name if calls == 1 else f"{name}#{calls}"  # a module used twice
                records.append(Recorded(label, module, output))

        return hook

    handles = [
        module.register_forward_hook(hook_for(name))
        for name, module in net.named_modules()
        if name  # the net itself answers logits
    ]
    try:
        yield records
    finally:
        for handle in handles:
            handle.remove()


def network_input(loaded: LoadedModel, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(the normalised input the net takes, the same at pixel scale for pictures)."""
    prep = loaded.preprocessing
    pixels = preprocessing.to_network_scale(
        raw, in_channels=prep.in_channels, input_size=prep.input_size, scale=prep.scale
    )
    return preprocessing.apply(prep, raw).to(loaded.device), pixels


def predicted(loaded: LoadedModel, logits: torch.Tensor, class_index: int) -> PredictionOut:
    probabilities = torch.softmax(logits.detach(), dim=1)[0]
    return PredictionOut(
        class_index=class_index,
        label=loaded.class_names[class_index],
        probability=float(probabilities[class_index]),
    )


def stages_of(records: list[Recorded]) -> list[Recorded]:
    """The conv and pooling layers among the recorded outputs: the course's stages."""
    return [record for record in records if isinstance(record.module, STAGE_TYPES)]


def pooled_to_fit(maps: torch.Tensor, max_pixels: int) -> tuple[torch.Tensor, int]:
    """(C, H, W) maps average-pooled by the smallest factor that brings H x W under
    `max_pixels`, and that factor (1: as they are)."""
    height, width = maps.shape[-2:]
    factor = max(1, math.isqrt(max(0, height * width - 1) // max_pixels))
    while math.ceil(height / factor) * math.ceil(width / factor) > max_pixels:
        factor += 1
    if factor == 1:
        return maps, 1
    return F.avg_pool2d(maps.unsqueeze(0), factor, ceil_mode=True)[0], factor


@dataclass(frozen=True)
class FeatureMaps:
    prediction: PredictionOut
    image: torch.Tensor  # (C, S, S), pixel scale
    layers: list[FeatureMap]


def feature_maps(
    loaded: LoadedModel,
    raw: torch.Tensor,
    *,
    channels: int,
    max_pixels: int,
    layer: str | None = None,
) -> FeatureMaps:
    """Every conv/pool stage's output for one raw sample (or the one `layer`), the first
    `channels` channels of each, each map at most `max_pixels`."""
    check_image_classifier(loaded, view="feature maps")
    net = copy.deepcopy(loaded.net)
    inputs, pixels = network_input(loaded, raw)
    with torch.inference_mode(), recording(net) as records:
        logits = net(inputs)
    stages = stages_of(records)
    if not stages:
        raise InvalidInputError("feature maps: the net has no conv or pooling layers")
    if layer is not None:
        stages = [record for record in stages if record.name == layer]
        if not stages:
            names = ", ".join(record.name for record in stages_of(records))
            raise InvalidInputError(f"layer {layer!r} is not a conv/pool stage; choose: {names}")
    return FeatureMaps(
        prediction=predicted(loaded, logits, int(logits.argmax(dim=1)[0])),
        image=pixels[0],
        layers=[feature_map(record, channels=channels, max_pixels=max_pixels) for record in stages],
    )


def feature_map(record: Recorded, *, channels: int, max_pixels: int) -> FeatureMap:
    output = record.output[0].float().cpu()
    shown, factor = pooled_to_fit(output[:channels], max_pixels)
    return FeatureMap(
        layer=record.name,
        kind=type(record.module).__name__,
        channels=output.shape[0],
        height=output.shape[1],
        width=output.shape[2],
        shown_channels=shown.shape[0],
        pooled_by=factor,
        maps=rounded(shown),
    )


def first_conv(net: nn.Module) -> tuple[str, nn.Conv2d]:
    """The first conv layer, in the order the net declares its modules."""
    for name, module in net.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    raise InvalidInputError("filters: the net has no conv layers (an MLP sees pixels directly)")


def first_filters(loaded: LoadedModel, model_id: str, *, channels: int) -> FiltersOut:
    """The first conv layer's kernels (the first `channels` of them)."""
    check_image_classifier(loaded, view="filters")
    name, conv = first_conv(loaded.net)
    weights = conv.weight.detach().float().cpu()
    return FiltersOut(
        model_id=model_id,
        layer=name,
        filters=weights.shape[0],
        in_channels=weights.shape[1],
        kernel_size=list(weights.shape[2:]),
        shown=min(channels, weights.shape[0]),
        weights=rounded(weights[:channels]),
    )


@dataclass(frozen=True)
class Saliency:
    prediction: PredictionOut
    target: PredictionOut
    image: torch.Tensor  # (C, S, S), pixel scale
    saliency: torch.Tensor  # (S, S), 0-1
    grad_cam: torch.Tensor | None  # (S, S), 0-1
    grad_cam_layer: str | None


def class_index(loaded: LoadedModel, class_name: str | None) -> int | None:
    """The index of a named class; 422 listing the names when it is not one."""
    if class_name is None:
        return None
    if class_name not in loaded.class_names:
        shown = ", ".join(loaded.class_names[:50])
        raise InvalidInputError(f"class_name {class_name!r} is not a class of the model: {shown}")
    return loaded.class_names.index(class_name)


def saliency(loaded: LoadedModel, raw: torch.Tensor, *, class_name: str | None) -> Saliency:
    """Gradient saliency (Simonyan et al. 2014) and Grad-CAM (Selvaraju et al. 2017) of the
    predicted class, or of `class_name`: which input pixels, and which places the last conv
    stage sees, raise that class's score."""
    check_image_classifier(loaded, view="saliency")
    wanted = class_index(loaded, class_name)
    net = copy.deepcopy(loaded.net)
    inputs, pixels = network_input(loaded, raw)
    inputs.requires_grad_(True)
    with torch.enable_grad(), recording(net) as records:
        logits = net(inputs)
    chosen = int(logits.argmax(dim=1)[0]) if wanted is None else wanted
    last = last_conv_stage(records)
    wrt = [inputs] if last is None else [inputs, last.output]
    grads = torch.autograd.grad(logits[0, chosen], wrt)
    input_grads = grads[0][0].abs().amax(dim=0)
    cam = None if last is None else grad_cam(last.output, grads[1], size=inputs.shape[-2:])
    return Saliency(
        prediction=predicted(loaded, logits, int(logits.argmax(dim=1)[0])),
        target=predicted(loaded, logits, chosen),
        image=pixels[0],
        saliency=scaled(input_grads.detach().cpu()),
        grad_cam=cam,
        grad_cam_layer=None if last is None else last.name,
    )


def last_conv_stage(records: list[Recorded]) -> Recorded | None:
    """What Grad-CAM explains: the last module output with a spatial grid before the global
    pool (LeNet's last pooling layer, ResNet's last stage), if any conv layer came before."""
    if not stages_of(records):
        return None
    grids = [record for record in records if not isinstance(record.module, GLOBAL_POOLS)]
    return grids[-1] if grids else None


def grad_cam(
    activation: torch.Tensor, gradient: torch.Tensor, *, size: tuple[int, ...] | torch.Size
) -> torch.Tensor:
    """ReLU of the channels weighted by their mean gradient, upsampled to the input, 0-1."""
    weights = gradient.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * activation).sum(dim=1, keepdim=True)).detach()
    upsampled = F.interpolate(cam, size=tuple(size), mode="bilinear", align_corners=False)
    return scaled(upsampled[0, 0].cpu())


def scaled(values: torch.Tensor) -> torch.Tensor:
    """Values over their largest (all zeros stay zeros)."""
    largest = values.max()
    return values / largest if largest > 0 else values
