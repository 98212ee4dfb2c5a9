"""What the views inside a net answer: feature maps, filters, saliency, confusion, top losses.

Pixel values are rounded to 4 decimals: the answer is for eyes and charts, and full float
precision would triple the bytes of a ResNet's feature maps."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Split = Literal["train", "val", "test", "all"]
Grid = list[list[float]]  # rows x columns


class InputOut(BaseModel):
    """Which input was looked at: a dataset sample or an uploaded image."""

    source: Literal["dataset", "upload"]
    dataset: str | None = None
    split: Split | None = None
    index: int | None = Field(default=None, description="Position in the split.")
    dataset_index: int | None = Field(default=None, description="Row of the whole dataset.")
    label: str | None = Field(default=None, description="The sample's true class, if known.")
    filename: str | None = None


class PredictionOut(BaseModel):
    class_index: int
    label: str
    probability: float


class FeatureMap(BaseModel):
    """One conv or pooling stage's output for the input."""

    layer: str = Field(description="The module's name in the net (as in the state_dict).")
    kind: str = Field(description="Its type: Conv2d, MaxPool2d, AvgPool2d.")
    channels: int = Field(description="Channels the stage has.")
    height: int
    width: int
    shown_channels: int = Field(description="How many of them `maps` holds (the first ones).")
    pooled_by: int = Field(
        description="1, or the factor maps larger than the pixel bound "
        "(D2L_INSIDE_MAX_PIXELS) were average-pooled by."
    )
    maps: list[Grid] = Field(description="shown_channels maps, each rows x columns.")


class FeatureMapsOut(BaseModel):
    model_id: str
    input: InputOut
    prediction: PredictionOut
    image: list[Grid] = Field(
        description="The network's input (channels x S x S), at pixel scale before normalisation."
    )
    layers: list[FeatureMap]


class FiltersOut(BaseModel):
    model_id: str
    layer: str = Field(description="The first conv layer's name.")
    filters: int = Field(description="Kernels the layer has (its output channels).")
    in_channels: int
    kernel_size: list[int]
    shown: int = Field(description="How many kernels `weights` holds (the first ones).")
    weights: list[list[Grid]] = Field(description="shown x in_channels x kh x kw.")


class SaliencyOut(BaseModel):
    model_id: str
    input: InputOut
    prediction: PredictionOut
    target: PredictionOut = Field(
        description="The class the maps explain: the predicted one, "
        "or the one asked for with `class_name`."
    )
    image: list[Grid] = Field(description="The network's input, channels x S x S.")
    saliency: Grid = Field(
        description="|d score / d input|, largest over channels, S x S, scaled to 0-1."
    )
    grad_cam: Grid | None = Field(
        description="Grad-CAM of the last conv stage, upsampled to "
        "S x S, 0-1; null for a net without conv layers."
    )
    grad_cam_layer: str | None = None


class TestEvaluationOut(BaseModel):
    """How much of the test split was evaluated."""

    model_id: str
    job_id: str
    dataset: str
    test_examples: int = Field(description="Examples in the job's test split.")
    evaluated: int = Field(
        description="How many were evaluated: the first ones of the split, "
        "at most D2L_INSIDE_MAX_TEST_EXAMPLES."
    )
    cut: bool = Field(description="True when fewer than all were evaluated.")
    accuracy: float


class ConfusionOut(TestEvaluationOut):
    class_names: list[str]
    matrix: list[list[int]] = Field(
        description="matrix[true][predicted]: counts, summing to `evaluated`."
    )


class TopLoss(BaseModel):
    index: int = Field(description="Position in the test split.")
    dataset_index: int
    label: str
    label_index: int
    prediction: str
    prediction_index: int
    probability: float = Field(description="Of the predicted class.")
    label_probability: float
    loss: float = Field(description="Cross-entropy: -log(label_probability).")
    sample: list[float] | list[list[float]] | list[list[list[float]]] = Field(
        description="The raw sample, as the dataset stores it."
    )


class TopLossesOut(TestEvaluationOut):
    items: list[TopLoss] = Field(description="Highest loss first.")
