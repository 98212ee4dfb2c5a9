"""`GET /`: the learner's web page (jobs and their curves, layer norms and views inside the net,
experiments compared, k-fold folds, sweeps, models, recipes, a digit to draw), served by the API
itself: a few static files and plotly.js from the `plotly` package, at /ui/...; no CDN, no build
step. The page reads only the public JSON endpoints and the job event stream."""

from __future__ import annotations

from pathlib import Path

import plotly
from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, HTMLResponse

from core.errors import NotFoundError

router = APIRouter(tags=["health"])
STATIC = Path(__file__).resolve().parents[1] / "static"
PAGE = STATIC / "index.html"
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css"}
# Every file the page loads, by the name in its URL: nothing else is ever opened.
ASSETS = {
    **{path.name: path for path in STATIC.iterdir() if path.suffix in MEDIA_TYPES},
    "plotly.min.js": PLOTLY_JS,
}


@router.get(
    "/",
    summary="The web page: jobs, curves, experiments, sweeps, models, recipes, draw a digit",
    response_class=HTMLResponse,
)
def index() -> FileResponse:
    return FileResponse(PAGE, media_type="text/html", headers={"Cache-Control": "no-cache"})


@router.get("/ui/{name}", include_in_schema=False)
def asset(name: str, request: Request) -> Response:
    """The page's scripts and styles, and plotly.js as the installed `plotly` ships it. A
    browser keeps them and asks again each time (no-cache): 304 while they are unchanged, so
    plotly's 5 MB travel once."""
    path = ASSETS.get(name)
    if path is None:
        raise NotFoundError(f"no page file {name!r}")
    stat = path.stat()
    headers = {"Cache-Control": "no-cache", "ETag": f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'}
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=headers)
