"""`kind: "sweep"`: a hyperparameter search with Optuna. The body is a train (or finetune) job plus
`sweep` settings; no worker runs the sweep itself: a short controller step (worker/sweep_control.py)
makes its trials, each an ordinary job with the sweep as its parent, and concludes it."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from core.datasets import get_dataset, is_upload_id
from core.jobs import sweep_queries
from core.jobs.kind_registry import register_kind
from core.jobs.kinds.training import TrainingKind
from core.jobs.references import BASE_SOURCE
from core.jobs.schemas import JobCreate
from core.jobs.sweep_schemas import SweepSettings, trial_body
from core.queue import JobQueue
from core.recipes import RECIPE_FIELDS
from core.settings import Settings
from core.tables import Job


def trial_spec(spec: JobCreate, values: dict[str, Any]) -> JobCreate:
    """A sweep's trial: its body as a train (or finetune) job, with `values` written at their
    dotted paths; ValueError naming the field when that is no valid job."""
    base = spec.model_dump(mode="json", exclude={"kind", "sweep", *RECIPE_FIELDS})
    base["kind"] = "finetune" if spec.finetune is not None else "train"
    try:
        return JobCreate.model_validate(trial_body(base, values))
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        shown = ", ".join(f"{path}={value!r}" for path, value in values.items())
        raise ValueError(f"sweep.space ({shown}): {problems}") from None


def settings_of(spec: JobCreate) -> SweepSettings:
    assert spec.sweep is not None  # the card's rules: a sweep body always has them
    return spec.sweep


@register_kind
class Sweep(TrainingKind):
    name = "sweep"
    engine = None  # its controller step makes the trials; each trial is a job a worker runs
    takes = frozenset({"sweep", "finetune"})
    needs = frozenset({"sweep"})
    dataset_tasks = frozenset({"classification", "regression"})

    def check_spec(self, spec: JobCreate) -> None:
        """Besides its blocks: the metric must score the trials. Whether each choice makes a
        valid trial (a net built per choice) is `check_body`'s, off the event loop; a stored
        sweep loaded again never repeats it."""
        super().check_spec(spec)
        metric = settings_of(spec).metric
        if metric.startswith("val_") and spec.dataset.val_fraction == 0:
            raise ValueError(f"sweep.metric {metric} needs dataset.val_fraction > 0")
        name = spec.dataset.name
        if metric == "val_acc" and not is_upload_id(name):
            if get_dataset(name).task == "regression":
                raise ValueError(f"sweep.metric: {name} is a regression dataset; use val_loss")

    def check_body(self, spec: JobCreate, settings: Settings) -> None:
        """At most D2L_SWEEP_MAX_TRIALS trials and D2L_SWEEP_MAX_SPACE_VALUES values; each
        choice and range bound makes a valid trial."""
        sweep = settings_of(spec)
        sweep.check_size(
            max_trials=settings.sweep_max_trials,
            max_space_values=settings.sweep_max_space_values,
        )
        sweep.check_trials(lambda values: trial_spec(spec, values))

    def training_epochs(self, spec: JobCreate) -> int:
        return settings_of(spec).total_trials * spec.hyperparameters.epochs

    def trained_specs(self, spec: JobCreate) -> list[tuple[str, JobCreate]]:
        """The body's net, and each net a value of the space that changes the model builds."""
        return [("model", spec)] + [
            (f"sweep value {values}", trial_spec(spec, values))
            for values in settings_of(spec).checked_values()
            if all(path.startswith("model.") for path in values)
        ]

    def weight_sources(self, spec: JobCreate) -> list[tuple[str, JobCreate]]:
        """The body's fine-tune source, and each other one a value of the space names: a sweep
        may vary `finetune.source` (or its `job_id` or `checkpoint_id`) like any other field."""
        if spec.finetune is None:
            return []
        named, seen = [(BASE_SOURCE, spec)], {spec.finetune.source}
        for values in settings_of(spec).checked_values():
            if not any(path.startswith("finetune.") for path in values):
                continue
            trial = trial_spec(spec, values)  # valid: the body's own check built each once
            assert trial.finetune is not None
            if trial.finetune.source not in seen:
                seen.add(trial.finetune.source)
                shown = ", ".join(f"{path}={value!r}" for path, value in values.items())
                named.append((f"sweep.space ({shown})", trial))
        return named

    def enqueue(self, job_queue: JobQueue, job_id: str, spec: JobCreate, *, queue: str) -> None:
        job_queue.enqueue_sweep_step(job_id, queue=queue)

    def cancel(self, session: Session, job: Job) -> Job:
        """No more trials; its queued ones are cancelled and its running ones asked to stop."""
        sweep_queries.cancel_sweep(session, sweep=job)
        return job
