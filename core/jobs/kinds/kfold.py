"""`kind: "kfold"`: k-fold model selection (ch. 3.6). Each candidate configuration trains k times,
each time holding one fold out; the best mean held-out metric wins and is retrained on all of it."""

from __future__ import annotations

from pydantic import ValidationError

from core.jobs.kind_registry import register_kind
from core.jobs.kinds.training import TrainingKind
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

    def planned_epochs(self, spec: JobCreate) -> int:
        """Every fold of every candidate, then the winner's retraining."""
        epochs = [each.hyperparameters.epochs for _, each in candidate_specs(spec)]
        return (spec.kfold or KFold()).k * sum(epochs) + max(epochs)

    def trained_specs(self, spec: JobCreate) -> list[tuple[str, JobCreate]]:
        """The job's net, and each candidate's that changes the model."""
        return [("model", spec)] + [
            (f"candidate {label!r}", each)
            for label, each in candidate_specs(spec)
            if each.model != spec.model
        ]
