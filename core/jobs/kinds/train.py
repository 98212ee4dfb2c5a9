"""`kind: "train"`: train a net from scratch on a dataset, classification or regression."""

from __future__ import annotations

from core.jobs.kind_registry import register_kind
from core.jobs.kinds.training import TrainingKind


@register_kind
class Train(TrainingKind):
    name = "train"
    dataset_tasks = frozenset({"classification", "regression"})
