"""The answers of the views inside a net, from a loaded model and its input: what the API's
routes return as JSON, and what `charts` draws."""

from __future__ import annotations

from core.serving.inference import LoadedModel
from core.serving.inside import activations
from core.serving.inside.samples import Sample
from core.serving.inside.schemas import FeatureMapsOut, SaliencyOut


def feature_maps_out(
    loaded: LoadedModel,
    model_id: str,
    sample: Sample,
    *,
    channels: int,
    max_pixels: int,
    layer: str | None,
) -> FeatureMapsOut:
    """Every conv/pool stage's channels for `sample`, bounded in channels and pixels."""
    maps = activations.feature_maps(
        loaded, sample.raw, channels=channels, max_pixels=max_pixels, layer=layer
    )
    return FeatureMapsOut(
        model_id=model_id,
        input=sample.origin,
        prediction=maps.prediction,
        image=activations.rounded(maps.image),
        layers=maps.layers,
    )


def saliency_out(
    loaded: LoadedModel, model_id: str, sample: Sample, *, class_name: str | None
) -> SaliencyOut:
    """Gradient saliency and Grad-CAM for `sample`, of the predicted class or `class_name`."""
    found = activations.saliency(loaded, sample.raw, class_name=class_name)
    return SaliencyOut(
        model_id=model_id,
        input=sample.origin,
        prediction=found.prediction,
        target=found.target,
        image=activations.rounded(found.image),
        saliency=activations.rounded(found.saliency),
        grad_cam=None if found.grad_cam is None else activations.rounded(found.grad_cam),
        grad_cam_layer=found.grad_cam_layer,
    )
