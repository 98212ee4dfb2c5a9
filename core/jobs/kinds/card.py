"""What a card of a job kind says, and what it does where a kind says nothing of its own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from core.errors import InvalidInputError
from core.jobs.metrics import MetricKey, MetricPoint
from core.jobs.queries import request_cancel

if TYPE_CHECKING:
    import torch
    from sqlalchemy.orm import Session

    from core.bodies import Frozen
    from core.jobs.references import ResolvedSource
    from core.queue import JobQueue
    from core.settings import Settings
    from core.tables import Job


#: The course's chart of a training run (train loss, train accuracy, validation accuracy).
COURSE_CURVES = (MetricKey("train", "loss"), MetricKey("train", "acc"), MetricKey("val", "acc"))


@dataclass(frozen=True)
class RequestSummary:
    """What listings and charts show of a stored job's body, whatever its kind."""

    arch: str  # the architecture it builds; a predict job's `model <id or alias>`
    config: dict[str, Any]  # the builder's options as given (none for a predict job)
    dataset: str
    hyperparameters: dict[str, Any]
    recipe: str | None = None


@dataclass(frozen=True)
class Chart:
    """A job's learning-curve chart: labelled lines of (epoch, value), drawn by
    core/experiments/plots.py."""

    curves: dict[str, list[tuple[int, float]]]
    title: str
    ylabel: str = ""
    emphasis: tuple[str, ...] = ()
    faint: tuple[str, ...] = ()


class KindCard:
    """One kind of job. Subclass it (or `TrainingKind`) in a file of `core/jobs/kinds/`, set the
    class attributes, override what the kind does differently, and register the class with
    `@register_kind`."""

    name: ClassVar[str]
    #: The pydantic body a client sends for this kind (several kinds may share one).
    spec_model: ClassVar[type[Frozen]]
    #: The worker engine that runs it (a key of `worker.engines.ENGINES`); None where no worker
    #: runs the job itself (a sweep: a controller step makes its trials, which are jobs).
    engine: ClassVar[str | None]
    #: Its success registers a trained model (GET /v1/models); else its result is a file.
    makes_model: ClassVar[bool] = True
    #: The file its success leaves besides (or instead of) a model, e.g. "predictions".
    artifact: ClassVar[str | None] = None
    #: The dataset tasks (classification, regression) it can train on.
    dataset_tasks: ClassVar[frozenset[str]] = frozenset({"classification"})

    @property
    def runs_on_a_worker(self) -> bool:
        """A worker runs it start to end, with heartbeats, from its own broker message."""
        return self.engine is not None

    def check_spec(self, spec: Any) -> None:
        """The kind's own rules of the body, beyond the body model's (ValueError). Cheap: run
        wherever a body is validated, never when a stored one is loaded."""

    def check_body(self, spec: Any, settings: Settings) -> None:
        """Costly checks of the body (a net built for every variant it trains), run once, at
        submission, in the API's CPU pool; InvalidInputError or ValueError."""

    def check_submission(self, session: Session, spec: Any, settings: Settings) -> Any:
        """What only the server can check (the stored things it names, files, worker memory),
        in the caller's owner-scoped session; returns the spec as it is to be stored."""
        return spec

    def resolve_references(self, session: Session, spec: Any) -> list[ResolvedSource]:
        """Check every stored thing the job names against what `session` (scoped to an owner)
        can see: at submission, and again by the worker that claims the job. InvalidInputError
        naming the field; the fine-tune sources it names, resolved."""
        raise NotImplementedError

    def planned_epochs(self, spec: Any) -> int:
        """Epochs the job trains in all: the length of its progress bar."""
        return int(spec.hyperparameters.epochs)

    def describe(self, spec: Any) -> str:
        """What the job runs, for the log: `lenet on digits`, `model ab12 on digits`."""
        summary = self.summary(spec)
        return f"{summary.arch} on {summary.dataset}"

    def enqueue(self, job_queue: JobQueue, job_id: str, spec: Any, *, queue: str) -> None:
        """Send the stored job to the workers."""
        job_queue.enqueue(
            job_id, queue=queue, time_limit_s=spec.time_limit_s, priority=spec.priority
        )

    def cancel(self, session: Session, job: Job) -> Job:
        """Ask the locked job to stop: a queued one never starts, a running one stops at its
        next step. Returns the row to answer with."""
        request_cancel(session, job=job)
        return job

    def out_of_memory_advice(self, spec: Any, device: torch.device) -> str:
        """What to change when a batch did not fit on the GPU."""
        return f"GPU out of memory on {device}: try a smaller batch_size"

    def summary(self, spec: Any) -> RequestSummary:
        """What listings and charts show of the body."""
        raise NotImplementedError

    def chart_metrics(self) -> list[str]:
        """The metric rows its chart reads (flat names; empty: every row)."""
        return [key.flat for key in COURSE_CURVES]

    def chart(self, spec: Any, status: str, points: list[MetricPoint]) -> Chart:
        """The course's three curves, from the rows `chart_metrics` names."""
        course = {
            f"{key.split} {key.name}": [(p.epoch, p.value) for p in points if p.key == key]
            for key in COURSE_CURVES
        }
        summary = self.summary(spec)
        return Chart(
            {label: line for label, line in course.items() if line},
            title=f"{summary.arch} on {summary.dataset} ({status})",
        )

    def trained_specs(self, spec: Any) -> list[tuple[str, Any]]:
        """(what, spec) of each different net the job may train, counted against the size
        limit (D2L_MAX_MODEL_PARAMETERS)."""
        return [("model", spec)]


def check_time_limit(spec: Any, settings: Settings) -> None:
    """A job may ask for less time than the service's limit, never more."""
    limit = settings.job_time_limit_s
    if spec.time_limit_s is not None and spec.time_limit_s > limit:
        raise InvalidInputError(
            f"time_limit_s: at most {limit:g} s on this service (D2L_JOB_TIME_LIMIT_S); "
            f"got {spec.time_limit_s:g}"
        )
