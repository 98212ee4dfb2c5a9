"""Dynamic micro-batching: concurrent requests for one model share one forward pass.

A small net's forward pass costs about the same for 1 sample as for 32 on a CPU, so under load
gathering requests multiplies throughput. Each model has one batcher; at most one of its forward
passes runs at a time, in an executor thread, so the event loop never waits on one. While a pass
runs, new requests queue up and form the next batch by themselves.

The gather wait (`max_wait_s`) is spent only under load, and only until as many requests are
queued as the previous batch held: with k clients each waiting for its answer, about k requests
come back. A lone client never waits for company that is not coming, so its latency stays that
of the forward pass; nor do two clients wait out the whole window for a batch of 32.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

import torch

from core.serving.inference import LoadedModel, respond, run_forward
from core.serving.schemas import PredictResponse


@dataclass(frozen=True)
class PendingRequest:
    loaded: LoadedModel
    raw: torch.Tensor  # (N, *raw_shape): this request's samples
    top_k: int | None
    future: asyncio.Future[PredictResponse]


BatchObserver = Callable[[int, int, float], None]


class MicroBatcher:
    """Gathers one model's requests into batches of at most `max_batch` samples."""

    def __init__(
        self,
        model_id: str,
        *,
        executor: Executor,
        max_batch: int,
        max_wait_s: float,
        observe: BatchObserver | None = None,
    ) -> None:
        self.model_id = model_id
        self.observe = observe  # told (samples, requests, seconds) of each forward pass
        self.executor = executor
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._pending: deque[PendingRequest] = deque()
        self._pending_samples = 0
        self._drainer: asyncio.Task[None] | None = None
        self._full: asyncio.Event | None = None  # set when the gathered batch is complete
        self._last_batch_requests = 0
        self.batch_sizes: deque[int] = deque(maxlen=1000)  # requests per pass, for tests/bench

    async def submit(
        self, loaded: LoadedModel, raw: torch.Tensor, *, top_k: int | None
    ) -> PredictResponse:
        """This request's response, computed in a batch with whatever else is waiting."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[PredictResponse] = loop.create_future()
        self._pending.append(PendingRequest(loaded, raw, top_k, future))
        self._pending_samples += len(raw)
        if self._full is not None and self._gathered():
            self._full.set()
        if self._drainer is None or self._drainer.done():
            self._drainer = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        """Run batches until nothing is pending; a new submit starts a new drainer."""
        loop = asyncio.get_running_loop()
        while self._pending:
            if self._last_batch_requests > 1 and self.max_wait_s > 0 and not self._gathered():
                self._full = asyncio.Event()
                try:
                    await asyncio.wait_for(self._full.wait(), self.max_wait_s)
                except TimeoutError:
                    pass
                finally:
                    self._full = None
            batch = self._take()
            if batch:
                await self._run(loop, batch)

    def _gathered(self) -> bool:
        """As many requests as last time are queued, or a full batch of samples."""
        return (
            len(self._pending) >= self._last_batch_requests
            or self._pending_samples >= self.max_batch
        )

    def _take(self) -> list[PendingRequest]:
        """The next batch: queued requests in order, up to `max_batch` samples (at least one
        request), all for the same loaded model object; abandoned requests are dropped."""
        batch: list[PendingRequest] = []
        samples = 0
        while self._pending:
            request = self._pending[0]
            if batch and (
                samples + len(request.raw) > self.max_batch or request.loaded is not batch[0].loaded
            ):
                break
            self._pending.popleft()
            self._pending_samples -= len(request.raw)
            if request.future.done():  # the client went away
                continue
            batch.append(request)
            samples += len(request.raw)
        self._last_batch_requests = len(batch)
        if batch:
            self.batch_sizes.append(len(batch))
        return batch

    async def _run(self, loop: asyncio.AbstractEventLoop, batch: list[PendingRequest]) -> None:
        try:
            responses = await loop.run_in_executor(self.executor, self._forward, batch)
        except Exception as error:  # noqa: BLE001 - each request of the batch gets the error
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(error)
            return
        for request, response in zip(batch, responses, strict=True):
            if not request.future.done():
                request.future.set_result(response)

    def _forward(self, batch: list[PendingRequest]) -> list[PredictResponse]:
        """In an executor thread: one forward pass, then each request's own slice of it."""
        loaded = batch[0].loaded
        raws = [request.raw for request in batch]
        started = time.perf_counter()
        outputs = run_forward(loaded, raws[0] if len(raws) == 1 else torch.cat(raws))
        if self.observe is not None:
            self.observe(len(outputs), len(batch), time.perf_counter() - started)
        slices = outputs.split([len(raw) for raw in raws])
        return [
            respond(loaded, self.model_id, part, top_k=request.top_k)
            for request, part in zip(batch, slices, strict=True)
        ]
