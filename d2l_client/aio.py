"""The asynchronous client: the same methods as `Client`, awaited (`async with AsyncClient()`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, cast

import anyio
import httpx

from d2l_client import calls
from d2l_client.calls import Call, job_body
from d2l_client.client import DEFAULT_URL, RECONNECTS, STREAM_TIMEOUT, TIMEOUT, backoff_s
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


class AsyncClient:
    """One async connection pool to one server."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        token: str | None = None,
        timeout: httpx.Timeout | float = TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.AsyncClient(
            base_url=url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def send(self, call: Call) -> httpx.Response:
        try:
            response = await self.http.request(
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

    async def _json(self, call: Call) -> Any:
        return (await self.send(call)).json()

    async def submit(self, body: dict[str, Any]) -> AsyncJob:
        info = cast(JobInfo, await self._json(Call("POST", "/v1/jobs", json=body)))
        return AsyncJob(self, info)

    async def train(self, *, arch: str, dataset: str, **options: Any) -> AsyncJob:
        return await self.submit(job_body("train", arch=arch, dataset=dataset, **options))

    async def finetune(
        self, *, arch: str, dataset: str, finetune: dict[str, Any], **options: Any
    ) -> AsyncJob:
        body = job_body("finetune", arch=arch, dataset=dataset, finetune=finetune, **options)
        return await self.submit(body)

    async def kfold(
        self, *, arch: str, dataset: str, kfold: dict[str, Any], **options: Any
    ) -> AsyncJob:
        body = job_body("kfold", arch=arch, dataset=dataset, kfold=kfold, **options)
        return await self.submit(body)

    async def sweep(
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
    ) -> AsyncJob:
        settings = calls.sweep_settings(
            space,
            trials=trials,
            max_concurrent=max_concurrent,
            search=search,
            metric=metric,
            prune=prune,
            **(sweep_options or {}),
        )
        body = job_body("sweep", arch=arch, dataset=dataset, sweep=settings, **options)
        return await self.submit(body)

    async def run_recipe(
        self, name: str, *, variant: str | None = None, **overrides: Any
    ) -> AsyncJob:
        """As Client.run_recipe."""
        return await self.submit(calls.recipe_body(name, variant=variant, **overrides))

    async def predict_job(self, model: str, *, dataset: str, **options: Any) -> AsyncJob:
        """As Client.predict_job."""
        return await self.submit(calls.predict_job_body(model, dataset=dataset, **options))

    async def predictions(self, job_id: str) -> bytes:
        return (await self.send(Call("GET", f"/v1/jobs/{job_id}/predictions"))).content

    async def trials(self, sweep_id: str, **filters: Any) -> JobPage:
        return await self.list_jobs(parent=sweep_id, **filters)

    async def job(self, job_id: str) -> AsyncJob:
        return AsyncJob(self, await self.get_job(job_id))

    async def get_job(self, job_id: str) -> JobInfo:
        return cast(JobInfo, await self._json(Call("GET", f"/v1/jobs/{job_id}")))

    async def cancel(self, job_id: str) -> JobInfo:
        """As Client.cancel."""
        return cast(JobInfo, await self._json(Call("POST", f"/v1/jobs/{job_id}/cancel")))

    async def list_jobs(self, **filters: Any) -> JobPage:
        return cast(JobPage, await self._json(calls.list_jobs(**filters)))

    async def metrics(self, job_id: str, **options: Any) -> list[MetricPoint]:
        return cast(list[MetricPoint], await self._json(calls.metrics(job_id, **options)))

    async def checkpoints(self, job_id: str) -> list[dict[str, Any]]:
        call = Call("GET", f"/v1/jobs/{job_id}/checkpoints")
        return cast(list[dict[str, Any]], await self._json(call))

    async def logs(self, job_id: str) -> str:
        return (await self.send(Call("GET", f"/v1/jobs/{job_id}/logs"))).text

    async def curves_png(self, job_id: str) -> bytes:
        return (await self.send(Call("GET", f"/v1/jobs/{job_id}/curves.png"))).content

    async def events(
        self, job_id: str, *, last_event_id: str | None = None
    ) -> AsyncIterator[Event]:
        """The job's server-sent events until its `end` event; resumes a dropped stream."""
        parser, failures = EventParser(last_id=last_event_id), 0
        while True:
            headers = {"last-event-id": parser.last_id} if parser.last_id else {}
            try:
                async with self.http.stream(
                    "GET", f"/v1/jobs/{job_id}/events", headers=headers, timeout=STREAM_TIMEOUT
                ) as response:
                    if response.is_error:
                        await response.aread()
                        raise_for_status(response)
                    async for line in response.aiter_lines():
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
            await anyio.sleep(backoff_s(failures))
            parser = EventParser(last_id=parser.last_id)

    async def experiments(self) -> list[ExperimentInfo]:
        return cast(list[ExperimentInfo], await self._json(Call("GET", "/v1/experiments")))

    async def experiment(self, name: str, *, metric: str | None = None) -> dict[str, Any]:
        call = Call("GET", f"/v1/experiments/{name}", calls.clean(metric=metric))
        return cast(dict[str, Any], await self._json(call))

    async def compare(self, name: str, *, metric: str | None = None) -> dict[str, Any]:
        call = Call("GET", f"/v1/experiments/{name}/compare", calls.clean(metric=metric))
        return cast(dict[str, Any], await self._json(call))

    async def experiment_curves_png(self, name: str, *, metric: str = "val_acc") -> bytes:
        call = Call("GET", f"/v1/experiments/{name}/curves.png", {"metric": metric})
        return (await self.send(call)).content

    async def models(self, **filters: Any) -> dict[str, Any]:
        call = Call("GET", "/v1/models", calls.clean(**filters))
        return cast(dict[str, Any], await self._json(call))

    async def model(self, model_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], await self._json(Call("GET", f"/v1/models/{model_id}")))

    async def alias(self, model_id: str, name: str, *, production: bool = False) -> dict[str, Any]:
        """As Client.alias."""
        call = calls.add_alias(model_id, name, production=production)
        return cast(dict[str, Any], await self._json(call))

    async def remove_alias(self, model_id: str, name: str) -> dict[str, Any]:
        call = Call("DELETE", f"/v1/models/{model_id}/alias/{name}")
        return cast(dict[str, Any], await self._json(call))

    async def delete_model(self, model_id: str) -> None:
        """As Client.delete_model."""
        await self.send(Call("DELETE", f"/v1/models/{model_id}"))

    async def export(self, model_id: str, *, format: str = "onnx") -> bytes:
        """As Client.export."""
        return (await self.send(calls.export(model_id, format=format))).content

    async def export_sidecar(self, model_id: str) -> dict[str, Any]:
        call = Call("GET", f"/v1/models/{model_id}/export/sidecar")
        return cast(dict[str, Any], await self._json(call))

    async def predict(
        self, model_id: str, inputs: list[Any], *, top_k: int | None = None
    ) -> PredictResponse:
        call = calls.predict(model_id, inputs, top_k=top_k)
        return cast(PredictResponse, await self._json(call))

    async def predict_images(
        self, model_id: str, paths: Sequence[Path], *, top_k: int | None = None
    ) -> PredictResponse:
        call = calls.predict_images(model_id, paths, top_k=top_k)
        return cast(PredictResponse, await self._json(call))

    async def parameters(self, model_id: str, *, name: str | None = None) -> Any:
        call = Call("GET", f"/v1/models/{model_id}/parameters", calls.clean(name=name))
        return await self._json(call)

    async def datasets(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], await self._json(Call("GET", "/v1/datasets")))

    async def upload_dataset(self, path: Path, *, name: str | None = None) -> dict[str, Any]:
        return cast(dict[str, Any], await self._json(calls.upload_dataset(path, name=name)))

    async def recipes(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], await self._json(Call("GET", "/v1/recipes")))

    async def recipe(self, name: str) -> dict[str, Any]:
        return cast(dict[str, Any], await self._json(Call("GET", f"/v1/recipes/{name}")))

    async def architectures(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], await self._json(Call("GET", "/v1/architectures")))

    async def workers(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], await self._json(Call("GET", "/v1/workers")))

    async def ready(self) -> dict[str, Any]:
        return cast(dict[str, Any], await self._json(Call("GET", "/readyz")))


class AsyncJob:
    """A submitted job, followed with `async for event in job.follow()` or `await job.wait()`."""

    def __init__(self, client: AsyncClient, info: JobInfo) -> None:
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
        return f"AsyncJob({self.id!r}, status={self.status!r})"

    async def refresh(self) -> JobInfo:
        self.info = await self.client.get_job(self.id)
        return self.info

    async def follow(self) -> AsyncIterator[Event]:
        async for event in self.client.events(self.id):
            yield event
        await self.refresh()

    async def cancel(self) -> JobInfo:
        self.info = await self.client.cancel(self.id)
        return self.info

    async def wait(self, *, raise_on_failure: bool = True) -> JobInfo:
        if self.status not in FINISHED:
            async for _ in self.follow():
                pass
        info = await self.refresh()
        if raise_on_failure and info["status"] != "succeeded":
            raise JobFailedError(dict(info))
        return info

    async def metrics(self, **options: Any) -> list[MetricPoint]:
        return await self.client.metrics(self.id, **options)
