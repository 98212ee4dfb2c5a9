"""Training jobs: submit, follow, and read their metrics and checkpoints."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import SkipValidation, TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from api.auth import OwnerDep
from api.deps import MAX_OFFSET, CpuDep, JobQueueDep, SessionDep, SettingsDep
from api.errors import rules
from api.params import BareMetric, JobId, MetricNames, NameFilter
from api.untagged_errors import UntaggedErrorsRoute
from core.errors import UnavailableError
from core.jobs import queries
from core.jobs.kinds import JobSpec, JobSubmission, get_kind
from core.jobs.metrics import latest_metrics, parse_metric_names, read_metrics
from core.jobs.quota import check_quota
from core.jobs.schemas import JobStatus
from core.jobs.views import CheckpointOut, JobOut, JobPage, MetricOut, Progress
from core.names import NAME_PATTERN
from core.queue import queue_for
from core.recipes import compare
from core.registry import queries as registry
from core.settings import Settings
from core.tables import Job

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], route_class=UntaggedErrorsRoute)
log = logging.getLogger(__name__)


def job_out(session: Session, job: Job, *, model_id: str | None) -> JobOut:
    return JobOut(
        id=job.id,
        kind=job.kind,
        experiment=job.experiment.name,
        status=job.status,  # type: ignore[arg-type]
        progress=Progress(
            epoch=job.epoch,
            epochs=job.epochs,
            step=job.step if job.status == "running" else 0,
            steps=job.epoch_steps if job.status == "running" else 0,
        ),
        params=job.params,
        metrics=latest_metrics(session, job_id=job.id),
        result=job.result,
        error=job.error,
        worker=job.worker,
        device=job.device,
        model_id=model_id,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        attempts=job.attempts,
        cancel_requested=job.cancel_requested,
        rss_bytes=job.rss_bytes,
        peak_rss_bytes=job.peak_rss_bytes,
        book=compare(job.params, job.result),
    )


SUBMISSION: TypeAdapter[JobSpec] = TypeAdapter(JobSubmission)


def validated_submission(body: object, settings: Settings) -> JobSpec:
    """The body as the job it asks for, checked by its kind's card too. Validating builds a net
    (on the meta device) for the job, for each k-fold candidate and for each sweep choice: up to
    seconds of CPU, so this runs in the CPU pool, never on the event loop."""
    try:
        spec = SUBMISSION.validate_python(body)
    except ValidationError as error:  # the 422 FastAPI gives for a body that fails validation
        errors = [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]
        raise RequestValidationError(errors, body=body) from None
    get_kind(spec.kind).check_body(spec, settings)
    return spec


async def checked_submission(
    # Documented as a JobSubmission, but handed over as parsed JSON (SkipValidation): FastAPI
    # would validate it on the event loop.
    spec: Annotated[JobSubmission, SkipValidation],
    settings: SettingsDep,
    cpu: CpuDep,
) -> JobSpec:
    return await cpu.run(validated_submission, spec, settings)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Submit a training job",
    responses=rules(
        "the architecture, its options and input size must fit the dataset (its task, images "
        "or rows, channels; GET /v1/architectures and GET /v1/datasets say which)",
        "kfold, finetune and sweep settings go with their kind only, and every k-fold "
        "candidate and sweep value must make a valid job",
        "a recipe names a course experiment (GET /v1/recipes); its variant one of its own",
        "the dataset's files are on the service, and an upload is the caller's own",
        "time_limit_s at most the service's D2L_JOB_TIME_LIMIT_S; at most "
        "D2L_MAX_MODEL_PARAMETERS parameters per net",
        "a fine-tune's source is a succeeded job or an uploaded checkpoint of the same "
        "architecture and options; freeze prefixes name its parameters",
        "a predict job's model exists and fits the dataset's task and sample shape",
        "the job's memory (data, weights, optimiser, activations at its batch size) fits a "
        "live worker's memory, or its GPU's for a GPU job",
        "no string anywhere in the body holds a NUL (\\u0000)",
    ),
)
def submit_job(
    spec: Annotated[JobSpec, Depends(checked_submission)],
    session: SessionDep,
    job_queue: JobQueueDep,
    settings: SettingsDep,
    owner: OwnerDep,
) -> JobOut:
    """Check, store the job, commit, and only then send its id to a worker queue.

    `kind: "predict"` runs a trained model over a dataset split on a worker (for batches too
    big for one request); GET /v1/jobs/{id}/predictions downloads the file it writes."""
    check_quota(session, owner=owner, settings=settings)
    kind = get_kind(spec.kind)
    spec = kind.check_submission(session, spec, settings)
    queue = queue_for(wants_gpu=spec.wants_gpu)
    job = queries.create_job(session, spec=spec, queue=queue, owner=owner)
    session.commit()
    try:
        kind.enqueue(job_queue, job.id, spec, queue=queue)
    except Exception as error:
        log.error("could not enqueue job %s: %s", job.id, error)
        queries.finish_job(session, job=job, status="failed", error=f"broker unreachable: {error}")
        session.commit()
        raise UnavailableError("the job broker is unreachable; the job was not queued") from error
    log.info("job %s queued on %s: %s", job.id, queue, kind.describe(spec))
    return job_out(session, job, model_id=None)


@router.get("", summary="List jobs, newest first")
def list_jobs(
    session: SessionDep,
    experiment: NameFilter = None,
    status: JobStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    parent: Annotated[
        str | None, Query(pattern=NAME_PATTERN, description="A sweep's id: its trials.")
    ] = None,
) -> JobPage:
    jobs, total = queries.list_jobs(
        session, experiment=experiment, status=status, limit=limit, offset=offset, parent=parent
    )
    model_ids = registry.model_ids_for_jobs(session, job_ids=[job.id for job in jobs])
    return JobPage(
        items=[job_out(session, job, model_id=model_ids.get(job.id)) for job in jobs],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/{job_id}", summary="A job's status, progress, latest metrics and result")
def get_job(job_id: JobId, session: SessionDep) -> JobOut:
    job = queries.get_job(session, job_id=job_id)
    model_id = registry.model_ids_for_jobs(session, job_ids=[job.id]).get(job.id)
    return job_out(session, job, model_id=model_id)


@router.post(
    "/{job_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Cancel a job: a queued one never starts, a running one stops at its next step",
    responses={409: {"description": "The job has already finished"}},
)
def cancel_job(job_id: JobId, session: SessionDep) -> JobOut:
    """A running job ends `cancelled` within a few seconds, keeping its checkpoints (and the
    metrics of the epochs it finished)."""
    job = queries.lock_job(session, job_id=job_id)
    job = get_kind(job.kind).cancel(session, job)
    session.commit()
    log.info("job %s: cancel requested (%s)", job_id, job.status)
    model_id = registry.model_ids_for_jobs(session, job_ids=[job.id]).get(job.id)
    return job_out(session, job, model_id=model_id)


@router.get("/{job_id}/metrics", summary="Every recorded metric of a job, per epoch")
def get_metrics(
    job_id: JobId,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
    name: BareMetric = None,
    names: MetricNames = None,
    max_points: Annotated[int | None, Query(ge=2, le=100_000)] = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[MetricOut]:
    """All rows by default; `names` filters, `max_points` thins each series (keeping its first
    and last point), `limit`/`offset` page; X-Total-Count says how many rows matched."""
    queries.get_job(session, job_id=job_id)
    wanted = parse_metric_names(names, at_most=settings.query_max_values) + ([name] if name else [])
    points = read_metrics(session, job_id=job_id, names=wanted, max_points=max_points)
    response.headers["X-Total-Count"] = str(len(points))
    page = points[offset : None if limit is None else offset + limit]
    return [MetricOut.model_validate(point, from_attributes=True) for point in page]


@router.get("/{job_id}/checkpoints", summary="A job's stored state_dict checkpoints")
def get_checkpoints(job_id: JobId, session: SessionDep) -> list[CheckpointOut]:
    queries.get_job(session, job_id=job_id)
    rows = queries.list_checkpoints(session, job_id=job_id)
    return [CheckpointOut.model_validate(row, from_attributes=True) for row in rows]
