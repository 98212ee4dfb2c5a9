"""The synchronous client: `Client("http://127.0.0.1:8000")`, then typed methods per endpoint.

Every 4xx/5xx raises `APIError` carrying the server's own message (it says what to fix)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import httpx

from d2l_client import calls
from d2l_client.calls import Call, job_body
from d2l_client.errors import D2LError, JobFailedError, raise_for_status, unreachable
from d2l_client.sse import Event, EventParser
from d2l_client.types import (
    FINISHED,
    ExperimentInfo,
    JobInfo,
    JobPage,
    MetricPoint,
    PredictResponse,
)

DEFAULT_URL = "http://127.0.0.1:8000"
TIMEOUT = httpx.Timeout(30.0, read=120.0)
RECONNECTS = 5  # a dropped event stream is resumed this many times in a row
# The server sends a keepalive every 15 s, so a minute of silence means the connection is dead:
# the stream is resumed (Last-Event-ID) rather than left hanging.
STREAM_TIMEOUT = httpx.Timeout(30.0, read=60.0)


def backoff_s(failures: int) -> float:
    """Wait before resuming a dropped stream: at once the first time, then 1, 3, 7, 10 s."""
    return min(2.0 ** (failures - 1) - 1, 10.0)


class Client:
    """One connection pool to one server; use as a context manager or call `close()`."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        token: str | None = None,
        timeout: httpx.Timeout | float = TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(
            base_url=url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def send(self, call: Call) -> httpx.Response:
        """Send one described request; raises APIError on 4xx/5xx."""
        try:
            response = self.http.request(
                call.method,
                call.path,
                params=call.params or None,
                json=call.json,
                files=call.files,
                data=call.data,
            )
        except httpx.TransportError as error:
            raise unreachable(self.http.base_url, error) from error
        raise_for_status(response)
        return response

    def _json(self, call: Call) -> Any:
        return self.send(call).json()

    # jobs
    def submit(self, body: dict[str, Any]) -> Job:
        """POST /v1/jobs with a full job body; the queued job's handle."""
        info = cast(JobInfo, self._json(Call("POST", "/v1/jobs", json=body)))
        return Job(self, info)

    def train(self, *, arch: str, dataset: str, **options: Any) -> Job:
        """A training job: `experiment`, `config`, `hyperparameters`, `device` as keywords."""
        return self.submit(job_body("train", arch=arch, dataset=dataset, **options))

    def finetune(self, *, arch: str, dataset: str, finetune: dict[str, Any], **options: Any) -> Job:
        """Fine-tune from `finetune={"source": {"job_id": ...}, "freeze": "features"}`."""
        body = job_body("finetune", arch=arch, dataset=dataset, finetune=finetune, **options)
        return self.submit(body)

    def kfold(self, *, arch: str, dataset: str, kfold: dict[str, Any], **options: Any) -> Job:
        """k-fold model selection: `kfold={"k": 5, "candidates": [...]}`."""
        return self.submit(job_body("kfold", arch=arch, dataset=dataset, kfold=kfold, **options))

    def sweep(
        self,
        *,
        arch: str,
        dataset: str,
        space: dict[str, Any],
        trials: int | None = None,
        max_concurrent: int | None = None,
        search: str | None = None,
        metric: str | None = None,
        prune: str | None = None,
        sweep_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> Job:
        """A hyperparameter sweep: each trial is a train job of its own (`trials(sweep_id)`);
        `space={"lr": [0.05, 0.1], "dropout": {"low": 0.1, "high": 0.5}}`, `search` grid or
        random, `prune` none, median or asha. The finished sweep's result names `best_trial`."""
        settings = calls.sweep_settings(
            space,
            trials=trials,
            max_concurrent=max_concurrent,
            search=search,
            metric=metric,
            prune=prune,
            **(sweep_options or {}),
        )
        return self.submit(job_body("sweep", arch=arch, dataset=dataset, sweep=settings, **options))

    def run_recipe(self, name: str, *, variant: str | None = None, **overrides: Any) -> Job:
        """A course experiment (`recipes()` lists them), e.g. `run_recipe("lenet",
        variant="digits")`; `hyperparameters`, `experiment`, `device`... override the recipe's."""
        return self.submit(calls.recipe_body(name, variant=variant, **overrides))

    def predict_job(self, model: str, *, dataset: str, **options: Any) -> Job:
        """Predict a whole dataset split on a worker (`split`, `top_k`, `format` jsonl or csv,
        `device`); when it has succeeded, `predictions(job_id)` downloads the file."""
        return self.submit(calls.predict_job_body(model, dataset=dataset, **options))

    def predictions(self, job_id: str) -> bytes:
        """The file a succeeded predict job wrote (JSON lines or CSV)."""
        return self.send(Call("GET", f"/v1/jobs/{job_id}/predictions")).content

    def trials(self, sweep_id: str, **filters: Any) -> JobPage:
        """A sweep's trials (GET /v1/jobs?parent=SWEEP_ID), newest first."""
        return self.list_jobs(parent=sweep_id, **filters)

    def job(self, job_id: str) -> Job:
        """A handle on an existing job (fetched now: an unknown id raises APIError 404)."""
        return Job(self, self.get_job(job_id))

    def get_job(self, job_id: str) -> JobInfo:
        return cast(JobInfo, self._json(Call("GET", f"/v1/jobs/{job_id}")))

    def cancel(self, job_id: str) -> JobInfo:
        """A queued job never starts; a running one stops at its next step (its status reads
        `cancelled` within seconds, `cancel_requested` at once). A finished job: APIError 409."""
        return cast(JobInfo, self._json(Call("POST", f"/v1/jobs/{job_id}/cancel")))

    def list_jobs(self, **filters: Any) -> JobPage:
        """`experiment`, `status`, `parent` (a sweep's id), `limit`, `offset`."""
        return cast(JobPage, self._json(calls.list_jobs(**filters)))

    def metrics(self, job_id: str, **options: Any) -> list[MetricPoint]:
        """`names=["val_acc"]`, `max_points`, `limit`, `offset`."""
        return cast(list[MetricPoint], self._json(calls.metrics(job_id, **options)))

    def checkpoints(self, job_id: str) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._json(Call("GET", f"/v1/jobs/{job_id}/checkpoints")))

    def logs(self, job_id: str) -> str:
        return self.send(Call("GET", f"/v1/jobs/{job_id}/logs")).text

    def curves_png(self, job_id: str) -> bytes:
        return self.send(Call("GET", f"/v1/jobs/{job_id}/curves.png")).content

    def events(self, job_id: str, *, last_event_id: str | None = None) -> Iterator[Event]:
        """The job's server-sent events until its `end` event; resumes a dropped stream."""
        parser, failures = EventParser(last_id=last_event_id), 0
        while True:
            headers = {"last-event-id": parser.last_id} if parser.last_id else {}
            try:
                with self.http.stream(
                    "GET", f"/v1/jobs/{job_id}/events", headers=headers, timeout=STREAM_TIMEOUT
                ) as response:
                    if response.is_error:
                        response.read()
                        raise_for_status(response)
                    for line in response.iter_lines():
                        event = parser.feed(line)
                        if event is None:
                            continue
                        failures = 0
                        yield event
                        if event.kind in ("end", "error"):
                            return
            except httpx.TransportError as error:
                reason: object = error
            else:
                reason = "closed before the job ended"
            failures += 1
            if failures > RECONNECTS:
                raise D2LError(f"lost the event stream of job {job_id}: {reason}")
            time.sleep(backoff_s(failures))
            parser = EventParser(last_id=parser.last_id)  # resume after the last event seen

    # experiments
    def experiments(self) -> list[ExperimentInfo]:
        return cast(list[ExperimentInfo], self._json(Call("GET", "/v1/experiments")))

    def experiment(self, name: str, *, metric: str | None = None) -> dict[str, Any]:
        """Status counts and the best run by `metric` (e.g. val_acc, test_acc, val_loss)."""
        call = Call("GET", f"/v1/experiments/{name}", calls.clean(metric=metric))
        return cast(dict[str, Any], self._json(call))

    def compare(self, name: str, *, metric: str | None = None) -> dict[str, Any]:
        """Runs x (hyperparameters, final metrics, train-val gap, parameters, wall time)."""
        call = Call("GET", f"/v1/experiments/{name}/compare", calls.clean(metric=metric))
        return cast(dict[str, Any], self._json(call))

    def experiment_curves_png(self, name: str, *, metric: str = "val_acc") -> bytes:
        call = Call("GET", f"/v1/experiments/{name}/curves.png", {"metric": metric})
        return self.send(call).content

    # models, data, service
    def models(self, **filters: Any) -> dict[str, Any]:
        """A page of registered models, newest first: `name` (alias), `arch`, `limit`, `offset`."""
        return cast(dict[str, Any], self._json(Call("GET", "/v1/models", calls.clean(**filters))))

    def model(self, model_id: str) -> dict[str, Any]:
        """One model (an id or an alias such as `digits:production`)."""
        return cast(dict[str, Any], self._json(Call("GET", f"/v1/models/{model_id}")))

    def alias(self, model_id: str, name: str, *, production: bool = False) -> dict[str, Any]:
        """Name a model: it gets `name:N` (the next version) and `name:latest`, and
        `name:production` when asked; the model as described afterwards."""
        return cast(
            dict[str, Any], self._json(calls.add_alias(model_id, name, production=production))
        )

    def remove_alias(self, model_id: str, name: str) -> dict[str, Any]:
        """Take `name` off the model (`latest` falls back to the highest remaining version)."""
        call = Call("DELETE", f"/v1/models/{model_id}/alias/{name}")
        return cast(dict[str, Any], self._json(call))

    def delete_model(self, model_id: str) -> None:
        """Remove the model and its checkpoint files (its job and metrics stay); APIError 409
        while an alias names it."""
        self.send(Call("DELETE", f"/v1/models/{model_id}"))

    def export(self, model_id: str, *, format: str = "onnx") -> bytes:
        """The net as ONNX or TorchScript (`format="torchscript"`): preprocessed inputs to
        logits; `export_sidecar` says how raw samples become those inputs."""
        return self.send(calls.export(model_id, format=format)).content

    def export_sidecar(self, model_id: str) -> dict[str, Any]:
        """Input/output names and shapes, preprocessing (values and steps), class names."""
        call = Call("GET", f"/v1/models/{model_id}/export/sidecar")
        return cast(dict[str, Any], self._json(call))

    def predict(
        self, model_id: str, inputs: list[Any], *, top_k: int | None = None
    ) -> PredictResponse:
        return cast(PredictResponse, self._json(calls.predict(model_id, inputs, top_k=top_k)))

    def predict_images(
        self, model_id: str, paths: Sequence[Path], *, top_k: int | None = None
    ) -> PredictResponse:
        call = calls.predict_images(model_id, paths, top_k=top_k)
        return cast(PredictResponse, self._json(call))

    def parameters(self, model_id: str, *, name: str | None = None) -> Any:
        return self._json(Call("GET", f"/v1/models/{model_id}/parameters", calls.clean(name=name)))

    def datasets(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._json(Call("GET", "/v1/datasets")))

    def upload_dataset(self, path: Path, *, name: str | None = None) -> dict[str, Any]:
        return cast(dict[str, Any], self._json(calls.upload_dataset(path, name=name)))

    def recipes(self) -> list[dict[str, Any]]:
        """Every course experiment: its job, the book's numbers, whether its data are here."""
        return cast(list[dict[str, Any]], self._json(Call("GET", "/v1/recipes")))

    def recipe(self, name: str) -> dict[str, Any]:
        return cast(dict[str, Any], self._json(Call("GET", f"/v1/recipes/{name}")))

    def architectures(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._json(Call("GET", "/v1/architectures")))

    def workers(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._json(Call("GET", "/v1/workers")))

    def ready(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._json(Call("GET", "/readyz")))


class Job:
    """A submitted job: its last known state in `info`, and ways to follow it to the end."""

    def __init__(self, client: Client, info: JobInfo) -> None:
        self.client = client
        self.info = info

    @property
    def id(self) -> str:
        return self.info["id"]

    @property
    def status(self) -> str:
        return self.info["status"]

    @property
    def model_id(self) -> str | None:
        return self.info.get("model_id")

    def __repr__(self) -> str:
        return f"Job({self.id!r}, status={self.status!r})"

    def refresh(self) -> JobInfo:
        self.info = self.client.get_job(self.id)
        return self.info

    def follow(self) -> Iterator[Event]:
        """Every event of the job (status, metrics per epoch, progress) until it ends."""
        yield from self.client.events(self.id)
        self.refresh()

    def cancel(self) -> JobInfo:
        """Ask the job to stop (see `Client.cancel`); `wait()` then returns once it has."""
        self.info = self.client.cancel(self.id)
        return self.info

    def wait(self, *, raise_on_failure: bool = True) -> JobInfo:
        """Block until the job ends (following its events, not polling); its final state."""
        if self.status not in FINISHED:
            for _ in self.follow():
                pass
        info = self.refresh()
        if raise_on_failure and info["status"] != "succeeded":
            raise JobFailedError(dict(info))
        return info

    def metrics(self, **options: Any) -> list[MetricPoint]:
        return self.client.metrics(self.id, **options)
