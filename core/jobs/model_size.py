"""How large a net a job may ask for, counted before anything is allocated.

Each option is bounded on its own (core/registry/model_options.py), but their product is not:
sixteen hidden layers of 16,384 units are four billion weights. Every net a job would train (itself,
each k-fold candidate, each sweep value) is built on the meta device, where shapes cost no memory,
and its parameters are counted against the service's D2L_MAX_MODEL_PARAMETERS.
"""

from __future__ import annotations

import torch

import models
from core.datasets import DatasetInfo
from core.errors import InvalidInputError
from core.jobs.schemas import JobCreate
from models.complexity import count_parameters


def trained_specs(spec: JobCreate) -> list[tuple[str, JobCreate]]:
    """(what, spec) of each different net the job may train: its own, and those of k-fold
    candidates and sweep values that change the model (a learning rate does not)."""
    specs = [("model", spec)]
    if spec.kind == "kfold":
        specs += [
            (f"candidate {label!r}", each)
            for label, each in spec.candidate_specs()
            if each.model != spec.model
        ]
    if spec.sweep is not None:
        specs += [
            (f"sweep value {values}", spec.trial_spec(values))
            for values in spec.sweep.checked_values()
            if all(path.startswith("model.") for path in values)
        ]
    return specs


def parameter_count(spec: JobCreate, info: DatasetInfo) -> int:
    """Parameters of the net `spec` builds for data shaped as `info`."""
    with torch.device("meta"):
        net = models.get_model(
            spec.model.arch,
            in_channels=info.in_channels,
            num_classes=info.num_classes,
            input_size=spec.input_size_for(info),
            **spec.model_options,
        )
    return count_parameters(net)


def check_model_size(spec: JobCreate, info: DatasetInfo, *, max_parameters: int) -> None:
    """InvalidInputError when any net of the job has more than `max_parameters` parameters."""
    for what, each in trained_specs(spec):
        count = parameter_count(each, info)
        if count > max_parameters:
            raise InvalidInputError(
                f"model: the {what} has {count:,} parameters; this service trains at most "
                f"{max_parameters:,} (D2L_MAX_MODEL_PARAMETERS): use fewer or narrower layers"
            )
