"""The HTTP process: `create_app()` wires settings, database, queue and serving into FastAPI."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import Depends, FastAPI
from fastapi_offline import FastAPIOffline

from api.auth import TokenCheck, caller
from api.body_limit import BodyLimit
from api.cpu_pool import CpuPool
from api.errors import documented_errors, install_error_handlers
from api.fast_predict import PredictFastPath
from api.openapi import install_openapi, operation_id
from api.routes import (
    architectures,
    checkpoints,
    curves,
    datasets,
    events,
    experiments,
    health,
    inside,
    job_predictions,
    jobs,
    logs,
    metrics,
    recipes,
    sweep_plots,
    ui,
    workers,
)
from api.routes import models as model_routes
from api.routes import predict as predict_routes
from api.serving import Serving
from core.artifacts import open_artifact_store
from core.db import Database
from core.leftovers import remove_unfinished_uploads
from core.queue import JobQueue, make_celery
from core.settings import Settings, get_settings

DESCRIPTION = """Train, fine-tune and serve the networks of *Dive into Deep Learning*.

Submit a job with `POST /v1/jobs`, follow it with `GET /v1/jobs/{id}`, then predict with
`POST /v1/models/{model_id}/predict`."""


GIL_SWITCH_INTERVAL_S = 0.0005


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Size the threadpool that runs blocking work to the database pool: a thread then never
    waits for a connection, and the loop never waits for either.

    And take what start-up made (torch, pydantic, the routes: half a million objects) out of
    the garbage collector's sight: a full collection walks every object it sees while holding
    the GIL, a pause of ~0.5 s for every thread, the event loop's too, that the allocations of
    charts and sweep checks would otherwise trigger now and then.

    And hand the GIL over ten times as often (every 0.5 ms, not 5 ms): a request the loop
    answers takes dozens of GIL hand-overs, and each one waited up to a whole interval behind
    the CPU pool's threads (a /healthz took 0.1-0.3 s beside a sweep's checks on two cores)."""
    limiter = anyio.to_thread.current_default_thread_limiter()
    limiter.total_tokens = app.state.settings.api_threads
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        sys.setswitchinterval(switch_interval)


def create_app(settings: Settings | None = None) -> FastAPI:
    """An app bound to `settings` (the environment's when omitted)."""
    settings = settings or get_settings()
    settings.ensure_dirs()
    # Staging folders of uploads an API process killed midway left (old ones: not in progress).
    remove_unfinished_uploads(settings.datasets_dir, older_than_s=settings.leftover_age_s)
    settings.apply_torch_threads()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # /docs and /redoc with Swagger UI's and ReDoc's files from the fastapi-offline package,
    # not a CDN: the pages work on a machine without internet.
    app = FastAPIOffline(
        title="d2l-service",
        version="0.1.0",
        description=DESCRIPTION,
        responses=documented_errors(),
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from swagger.io
    )
    db = Database(
        settings.database_url,
        pool_size=settings.api_threads,
        pool_timeout_s=settings.db_pool_timeout_s,
    )
    store = open_artifact_store(settings)
    app.state.settings = settings
    app.state.db = db
    app.state.token_check = TokenCheck(db, enabled=settings.auth)
    app.state.cpu_pool = CpuPool(settings.cpu_workers)
    app.state.test_evaluations = inside.Evaluations()  # one evaluation per model at a time
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
        max_samples=settings.predict_max_samples,
    )
    install_error_handlers(app)
    install_openapi(app, auth=settings.auth)
    app.add_middleware(PredictFastPath)  # innermost: below the body limit and the metrics
    app.add_middleware(
        BodyLimit,
        upload_max_bytes=settings.upload_max_bytes,
        json_max_bytes=settings.request_max_bytes,
    )
    metrics.install_metrics(app, db=db, job_queue=app.state.job_queue)  # GET /metrics (Prometheus)
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
        sweep_plots,
        workers,
        model_routes,
        inside,
    ):
        app.include_router(module.router, dependencies=[Depends(caller)])
    return app
