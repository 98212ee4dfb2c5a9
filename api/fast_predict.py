"""The predict hot path, answered below the middleware that every request needs and above
Starlette's exception middleware, router and FastAPI's per-request machinery.

Under load, a small net's request is mostly HTTP and JSON: with micro-batching its share of a
forward pass is about 0.07 ms, while routing through the app's included routers, FastAPI's
request handling and dependency solving cost several times that (bench/RESULTS.md). So
`POST /v1/models/{model_id}/predict` is matched here, on the raw ASGI scope, and answered by the
same `answer` function as the documented route in api/routes/predict.py, with the same errors:

- the body limit and the Prometheus request metrics still apply (they sit outside this layer,
  and the metrics see the documented route's template);
- a `ServiceError` (404 unknown model, 422 wrong shape, 401 without a token) or a
  `RequestValidationError` is answered by the app's own exception handler, as the exception
  middleware would; anything else propagates to the server-error middleware (500).

Every other request passes through untouched.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.routes.predict import PREDICT_PATH, answer, predict, router

PREDICT_ROUTE = re.compile(r"^/v1/models/([^/]+)/predict$")


class PredictFastPath:
    """ASGI middleware: serves `POST /v1/models/{model_id}/predict` directly."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route = route_of(predict)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = PREDICT_ROUTE.match(scope["path"]) if scope["type"] == "http" else None
        if match is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        model_id = match[1]
        scope["route"] = self.route  # what the request metrics label it by
        scope["path_params"] = {"model_id": model_id}
        request = Request(scope, receive, send)
        try:
            response = await answer(request, request.app.state.serving, model_id)
        except ClientDisconnect:
            return
        except Exception as error:
            handler = handler_for(request.app, error)
            if handler is None:
                raise
            response = await handler(request, error)
        await response(scope, receive, send)


def handler_for(app: Any, error: Exception) -> Any:
    """The app's exception handler for `error` (by its class, then its bases), if any."""
    handlers = app.exception_handlers
    for kind in type(error).__mro__:
        if kind in handlers:
            return handlers[kind]
    return None


def route_of(endpoint: Any) -> Any:
    """The documented route of `endpoint`: its path template labels the request metrics."""
    for route in router.routes:
        if getattr(route, "endpoint", None) is endpoint:
            return route
    raise LookupError(f"{PREDICT_PATH} is not routed")  # pragma: no cover
