"""The one input a view looks at: a sample of a dataset split, or an uploaded image.

A split is drawn exactly as a train job with the same dataset settings draws it (`val_fraction`,
`test_fraction`, `split_seed`: the model's own job's by default), so `split=test&index=0` is the
first example the model was tested on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core.datasets import get_dataset, load_raw
from core.datasets.availability import check_available
from core.datasets.registry import dataset_splits
from core.errors import InvalidInputError
from core.preprocessing import Preprocessing
from core.serving.inference import LoadedModel, images_batch
from core.serving.inside.schemas import InputOut, Split

DEFAULT_SPLITS = {"val_fraction": 0.1, "test_fraction": 0.2, "split_seed": 0}


@dataclass(frozen=True)
class DatasetSplits:
    """A dataset and how it is split: a job's `dataset` settings."""

    name: str
    val_fraction: float
    test_fraction: float
    split_seed: int

    @classmethod
    def of_job(cls, params: dict[str, Any], *, name: str | None = None) -> DatasetSplits:
        """The job's dataset and split settings; `name` another dataset split the same way."""
        dataset = DEFAULT_SPLITS | params["dataset"]
        return cls(
            name=name or dataset["name"],
            val_fraction=float(dataset["val_fraction"]),
            test_fraction=float(dataset["test_fraction"]),
            split_seed=int(dataset["split_seed"]),
        )


@dataclass(frozen=True)
class Sample:
    """One raw sample (1, *raw_shape), and where it came from."""

    raw: torch.Tensor
    origin: InputOut


@dataclass(frozen=True)
class SplitRows:
    """A split's dataset rows, every raw sample and label of the dataset, its class names."""

    rows: torch.Tensor
    inputs: torch.Tensor
    targets: torch.Tensor
    class_names: tuple[str, ...]


def split_rows(
    splits: DatasetSplits, split: Split, *, root: Path, prep: Preprocessing
) -> SplitRows:
    """The rows of `split`, after checking the dataset is here and its samples fit the model."""
    check_available(splits.name, root)
    info = get_dataset(splits.name, root=root)
    if tuple(info.raw_shape) != prep.raw_shape:
        raise InvalidInputError(
            f"dataset {splits.name!r} stores samples of shape {list(info.raw_shape)}; the model "
            f"takes {list(prep.raw_shape)}: choose a dataset like the one it was trained on"
        )
    raw = load_raw(splits.name, root=root)
    if split == "all":
        rows = torch.arange(len(raw.targets))
    else:
        train, val, test = dataset_splits(
            raw,
            val_fraction=splits.val_fraction,
            test_fraction=splits.test_fraction,
            seed=splits.split_seed,
        )
        rows = {"train": train, "val": val, "test": test}[split]
    return SplitRows(rows, raw.inputs, raw.targets, info.class_names)


def dataset_sample(
    splits: DatasetSplits, split: Split, index: int, *, root: Path, prep: Preprocessing
) -> Sample:
    """Sample `index` of `split`, with its label; 422 when the split has no such index."""
    chosen = split_rows(splits, split, root=root, prep=prep)
    if not 0 <= index < len(chosen.rows):
        raise InvalidInputError(
            f"index {index} is not in the {split} split of {splits.name!r}, which has "
            f"{len(chosen.rows)} examples (0-{len(chosen.rows) - 1})"
        )
    row = int(chosen.rows[index])
    label = None
    if chosen.targets.dtype == torch.int64 and row < len(chosen.targets):
        label = chosen.class_names[int(chosen.targets[row])]
    origin = InputOut(
        source="dataset",
        dataset=splits.name,
        split=split,
        index=index,
        dataset_index=row,
        label=label,
    )
    return Sample(chosen.inputs[row : row + 1], origin)


def uploaded_sample(filename: str, data: bytes, loaded: LoadedModel, *, max_pixels: int) -> Sample:
    """An image file as the model's raw sample: its channels and raw size, as /predict/images."""
    raw = images_batch([(filename, data)], loaded.preprocessing, max_pixels=max_pixels)
    return Sample(raw, InputOut(source="upload", filename=filename))
