"""`kind: "kfold"`: k-fold model selection (ch. 3.6). Each candidate configuration trains k times,
each time holding one fold out; the best mean held-out metric wins and is retrained on all of it."""

from __future__ import annotations

from collections import defaultdict
from statistics import fmean

from pydantic import ValidationError

from core.jobs.kind_registry import register_kind
from core.jobs.kinds.card import Chart
from core.jobs.kinds.training import TrainingKind
from core.jobs.metrics import MetricPoint
from core.jobs.schemas import Candidate, JobCreate, KFold
from core.recipes import RECIPE_FIELDS


def candidate_specs(spec: JobCreate) -> list[tuple[str, JobCreate]]:
    """(label, train spec) of each configuration a k-fold job compares; ValueError naming the
    candidate when one is no valid job of its own."""
    base = spec.model_dump(mode="json", exclude={"kind", "kfold", "finetune", *RECIPE_FIELDS})
    candidates = (spec.kfold or KFold()).candidates or [Candidate(label="base")]
    specs = []
    for candidate in candidates:
        body = {
            **base,
            "model": {**base["model"], "config": {**base["model"]["config"], **candidate.config}},
            "hyperparameters": {**base["hyperparameters"], **candidate.hyperparameters},
        }
        try:
            specs.append((candidate.label, JobCreate.model_validate(body)))
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()
            )
            raise ValueError(f"candidate {candidate.label!r}: {problems}") from None
    return specs


@register_kind
class KFoldSelection(TrainingKind):
    name = "kfold"
    engine = "kfold"
    takes = frozenset({"kfold"})

    def check_spec(self, spec: JobCreate) -> None:
        super().check_spec(spec)
        candidate_specs(spec)  # each candidate must be a valid job of its own

    def training_epochs(self, spec: JobCreate) -> int:
        """Every fold of every candidate, then the winner's retraining."""
        epochs = [each.hyperparameters.epochs for _, each in candidate_specs(spec)]
        return (spec.kfold or KFold()).k * sum(epochs) + max(epochs)

    def chart_metrics(self) -> list[str]:
        return []  # its rows are tagged by candidate and fold (`c0/f2/val`): read them all

    def chart(self, spec: JobCreate, status: str, points: list[MetricPoint]) -> Chart:
        """The first candidate's held-out curve of each fold, and their mean."""
        name = "acc" if any(point.name == "acc" for point in points) else "loss"
        curves = fold_curves(points, name)
        return Chart(
            curves,
            title=f"{spec.model.arch} k-fold: first candidate's folds",
            ylabel=f"val {name}",
            emphasis=("mean",),
            faint=tuple(label for label in curves if label != "mean"),
        )

    def trained_specs(self, spec: JobCreate) -> list[tuple[str, JobCreate]]:
        """The job's net, and each candidate's that changes the model."""
        return [("model", spec)] + [
            (f"candidate {label!r}", each)
            for label, each in candidate_specs(spec)
            if each.model != spec.model
        ]


def fold_curves(points: list[MetricPoint], name: str) -> dict[str, list[tuple[int, float]]]:
    """Held-out curves of each fold of the first candidate that has them, plus their mean."""
    by_fold: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for point in points:
        parts = point.split.split("/")
        if len(parts) == 3 and parts[0] == "c0" and parts[2] == "val" and point.name == name:
            by_fold[f"fold {parts[1][1:]}"].append((point.epoch, point.value))
    epochs = sorted({epoch for line in by_fold.values() for epoch, _ in line})
    mean = [(e, fmean(v for line in by_fold.values() for ep, v in line if ep == e)) for e in epochs]
    return {**dict(sorted(by_fold.items())), "mean": mean}
