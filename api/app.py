"""The HTTP process: `create_app()` wires settings, database, queue and serving into FastAPI."""

from __future__ import annotations

import logging

from fastapi import Depends, FastAPI

from api.auth import TokenCheck, caller
from api.body_limit import BodyLimit
from api.errors import documented_errors, install_error_handlers
from api.fast_predict import PredictFastPath
from api.openapi import install_openapi
from api.routes import (
    architectures,
    checkpoints,
    curves,
    datasets,
    events,
    experiments,
    health,
    job_predictions,
    jobs,
    logs,
    metrics,
    recipes,
    ui,
    workers,
)
from api.routes import models as model_routes
from api.routes import predict as predict_routes
from api.serving import Serving
from core.artifacts import open_artifact_store
from core.db import Database
from core.queue import JobQueue, make_celery
from core.settings import Settings, get_settings

DESCRIPTION = """Train, fine-tune and serve the networks of *Dive into Deep Learning*.

Submit a job with `POST /v1/jobs`, follow it with `GET /v1/jobs/{id}`, then predict with
`POST /v1/models/{model_id}/predict`."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """An app bound to `settings` (the environment's when omitted)."""
    settings = settings or get_settings()
    settings.ensure_dirs()
    settings.apply_torch_threads()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = FastAPI(
        title="d2l-service",
        version="0.1.0",
        description=DESCRIPTION,
        responses=documented_errors(),
    )
    db = Database(settings.database_url)
    store = open_artifact_store(settings)
    app.state.settings = settings
    app.state.db = db
    app.state.token_check = TokenCheck(db, enabled=settings.auth)
    app.state.job_queue = JobQueue(make_celery(settings), settings)
    app.state.serving = Serving(
        db=db,
        store=store,
        device=settings.inference_device,
        capacity=settings.model_cache_size,
        max_bytes=settings.model_cache_bytes,
        max_batch=settings.predict_max_batch,
        max_wait_ms=settings.predict_max_wait_ms,
        max_image_pixels=settings.upload_max_image_pixels,
    )
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(PredictFastPath)  # innermost: below the body limit and the metrics
    app.add_middleware(
        BodyLimit,
        upload_max_bytes=settings.upload_max_bytes,
        json_max_bytes=settings.request_max_bytes,
    )
    metrics.install_metrics(app, db=db, settings=settings)  # GET /metrics (Prometheus)
    app.include_router(predict_routes.router)  # first: the hot path, matched before the rest
    app.include_router(health.router)  # open: probes and load balancers carry no token
    app.include_router(ui.router)  # a static page; the data it shows needs the token
    for module in (
        jobs,
        job_predictions,
        events,
        logs,
        metrics,
        curves,
        datasets,
        experiments,
        architectures,
        checkpoints,
        recipes,
        workers,
        model_routes,
    ):
        app.include_router(module.router, dependencies=[Depends(caller)])
    return app
