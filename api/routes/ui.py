"""`GET /`: a small read-only page (experiments, jobs, a job's live curves), served by the API
itself from one static file: no CDN, no build step, only the public JSON endpoints and SSE."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["health"])
PAGE = Path(__file__).resolve().parents[1] / "static" / "index.html"


@cache
def page() -> str:
    return PAGE.read_text(encoding="utf-8")


@router.get(
    "/", summary="A read-only web page: experiments, jobs, live curves", response_class=HTMLResponse
)
def index() -> HTMLResponse:
    return HTMLResponse(page())
