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


def parameter_count(spec: JobCreate, info: DatasetInfo) -> int:
    """Parameters of the net `spec` builds for data shaped as `info`."""
    with torch.device("meta"):
        net = models.build_net(spec.model.arch, spec.model_options, spec.net_shape(info))
    return count_parameters(net)


def check_model_size(
    specs: list[tuple[str, JobCreate]], info: DatasetInfo, *, max_parameters: int
) -> None:
    """InvalidInputError when any net of a job (`specs`: what, spec of each, as its kind's card
    lists them) has more than `max_parameters` parameters."""
    for what, each in specs:
        count = parameter_count(each, info)
        if count > max_parameters:
            raise InvalidInputError(
                f"model: the {what} has {count:,} parameters; this service trains at most "
                f"{max_parameters:,} (D2L_MAX_MODEL_PARAMETERS): use fewer or narrower layers"
            )
