"""The file a predict job wrote: GET /v1/jobs/{id}/predictions."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import ServingDep, SessionDep, SessionRoute
from api.params import JobId
from core.errors import NotFoundError
from core.jobs import queries
from core.jobs.kinds import get_kind, list_kinds

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], route_class=SessionRoute)
FILE_TYPES = {
    "application/x-ndjson": {"schema": {"type": "string"}},
    "text/csv": {"schema": {"type": "string"}},
}


@router.get(
    "/{job_id}/predictions",
    summary="Download a predict job's predictions (JSON lines or CSV)",
    response_class=Response,
    responses={
        200: {"content": FILE_TYPES, "description": "One line (or row) per sample"},
        404: {"description": "No such job, or it has no predictions (yet): `detail` says why"},
    },
)
def get_predictions(job_id: JobId, session: SessionDep, serving: ServingDep) -> Response:
    """One line per sample: its dataset `index`, `class_index`, `label`, the top-k
    `probabilities`, and, where the split has labels, `target`, `target_label` and `correct`.
    The file is checked against the sha256 in the job's result before it is sent."""
    job = queries.get_job(session, job_id=job_id)
    if get_kind(job.kind).artifact != "predictions":
        writers = list_kinds(lambda card: card.artifact == "predictions")
        raise NotFoundError(
            f"job {job_id} is a {job.kind} job; only jobs of kind "
            f"{' or '.join(map(repr, writers))} write predictions"
        )
    stored = (job.result or {}).get("predictions") if job.status == "succeeded" else None
    if stored is None:
        why = job.error or "its predictions are written when it succeeds"
        raise NotFoundError(f"job {job_id} is {job.status}: no predictions ({why})")
    data = serving.store.read_bytes(stored["path"], sha256=stored["sha256"])
    name = f"predictions-{job_id}.{stored['format']}"
    return Response(
        data,
        media_type=stored["media_type"],
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )
