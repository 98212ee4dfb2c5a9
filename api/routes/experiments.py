"""Experiments: named groups of jobs."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import SessionDep
from core import queries
from core.schemas import ExperimentOut

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])


@router.get("", summary="Every experiment with its number of jobs")
def list_experiments(session: SessionDep) -> list[ExperimentOut]:
    return [
        ExperimentOut(name=experiment.name, created_at=experiment.created_at, jobs=count)
        for experiment, count in queries.list_experiments(session)
    ]
