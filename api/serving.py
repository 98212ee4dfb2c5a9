"""Predictions in the API process: find the model, keep it loaded, batch concurrent requests.

Checkpoints are loaded with `weights_only=True` and verified against their sha256; nets run in eval
mode under `torch.inference_mode()` (core/serving/inference.py). Loaded models live in an LRU
bounded in bytes (api/model_cache.py); concurrent requests for one model share forward passes in an
executor thread (api/batching.py), so the event loop never waits on a forward pass or a load.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
from starlette.concurrency import run_in_threadpool

from api.batching import BatchObserver, MicroBatcher
from api.model_cache import ModelCache, RefCache
from core.artifacts import BaseArtifactStore
from core.auth.ownership import scope_to_owner
from core.datasets.images import DEFAULT_MAX_PIXELS
from core.db import Database
from core.errors import TooLargeError
from core.registry import queries as registry
from core.serving.inference import LoadedModel, as_batch, images_batch, load_model
from core.serving.schemas import PredictRequest, PredictResponse

REF_TTL_S = 1.0  # how long a model reference (id or alias) is trusted without the database
FORWARD_THREADS = 2  # forward passes of different models may overlap; one per model at a time
# Threads of their own for finding and loading models: a prediction never queues behind the
# blocking work of other requests (charts, listings) in the shared threadpool.
LOOKUP_THREADS = 2
GIL_SWITCH_INTERVAL_S = 0.0005


def ref_key(ref: str, owner: str | None) -> str:
    """The reference cache's key: with auth on, `lenet:latest` may name another model (or
    none) for each owner."""
    return ref if owner is None else f"{owner}\0{ref}"


class Serving:
    """The predict path: model references -> loaded models -> batched forward passes."""

    def __init__(
        self,
        *,
        db: Database,
        store: BaseArtifactStore,
        device: str,
        capacity: int,
        max_bytes: int = 2 * 2**30,
        max_batch: int = 32,
        max_wait_ms: float = 2.0,
        max_image_pixels: int = DEFAULT_MAX_PIXELS,
        max_samples: int = 4096,
    ) -> None:
        self.db = db
        self.store = store
        self.device = torch.device(device)
        self.max_image_pixels = max_image_pixels
        self.max_batch = max_batch
        self.max_samples = max_samples
        self.max_wait_s = max_wait_ms / 1000
        self.cache = ModelCache(max_bytes=max_bytes, max_models=capacity)
        self.refs = RefCache(REF_TTL_S)
        self.executor = ThreadPoolExecutor(FORWARD_THREADS, thread_name_prefix="d2l-forward")
        self.lookups = ThreadPoolExecutor(LOOKUP_THREADS, thread_name_prefix="d2l-lookup")
        # Told (samples, requests, seconds) of every forward pass: GET /metrics sets it.
        self.observe_batch: BatchObserver | None = None
        # A forward pass gives up the GIL in every op and must get it back after each. With the
        # default 5 ms switch interval a busy event loop (many clients) holds it for up to 5 ms
        # each time, so one LeNet pass of ~15 ops could wait ~75 ms: a convoy. Handing the GIL
        # over every 0.5 ms keeps both threads moving (bench/RESULTS.md: +20% req/s at 32
        # clients, no loss at 1).
        sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_INTERVAL_S))
        self._batchers: dict[str, MicroBatcher] = {}
        self._load_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def model_id(self, ref: str, owner: str | None = None) -> str:
        """The id a reference (id or `name:tag`) names now, among `owner`'s models when auth is
        on; NotFoundError otherwise."""
        key = ref_key(ref, owner)
        model_id = self.refs.get(key)
        if model_id is None:
            with self.db.sessions() as session:
                scope_to_owner(session, owner)
                model_id = registry.resolve_model(session, ref=ref).id
            self.refs.put(key, model_id)
        return model_id

    def get(self, ref: str, owner: str | None = None) -> LoadedModel:
        """The loaded model a reference names, from the cache or from its checkpoint (blocking:
        call it from a thread)."""
        return self.lookup(ref, owner)[1]

    def lookup(self, ref: str, owner: str | None = None) -> tuple[str, LoadedModel]:
        """(model id, loaded model) for a reference; blocking, as `get`."""
        model_id = self.model_id(ref, owner)
        loaded = self.cache.get(model_id)
        if loaded is not None:
            return model_id, loaded
        with self._lock:
            load_lock = self._load_locks.setdefault(model_id, threading.Lock())
        with load_lock:  # concurrent first requests load the checkpoint once
            loaded = self.cache.get(model_id)
            if loaded is None:
                loaded = self._load(model_id)
        return model_id, loaded

    def _load(self, model_id: str) -> LoadedModel:
        with self.db.sessions() as session:
            checkpoint = registry.resolve_model(session, ref=model_id).checkpoint
            path, sha256 = checkpoint.path, checkpoint.sha256
        payload = self.store.load_checkpoint(path, sha256=sha256)
        loaded = load_model(payload, self.device)
        for evicted in self.cache.put(model_id, loaded):
            self._batchers.pop(evicted, None)
        return loaded

    async def resolve(self, ref: str, owner: str | None = None) -> tuple[str, LoadedModel]:
        """(model id, loaded model) without blocking the loop: a cache hit costs no thread hop."""
        model_id = self.refs.get(ref_key(ref, owner))
        loaded = self.cache.get(model_id) if model_id is not None else None
        if model_id is None or loaded is None:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.lookups, self.lookup, ref, owner)
        return model_id, loaded

    def check_samples(self, count: int) -> None:
        """413 for more samples than one request may carry (D2L_PREDICT_MAX_SAMPLES)."""
        if count > self.max_samples:
            raise TooLargeError(
                f"{count} samples in one request; at most {self.max_samples} are served "
                "(D2L_PREDICT_MAX_SAMPLES): send them in several requests, or predict a whole "
                'dataset with a predict job (POST /v1/jobs with "kind": "predict")'
            )

    async def predict(
        self, ref: str, request: PredictRequest, owner: str | None = None
    ) -> PredictResponse:
        """Class probabilities (or values) for raw samples, preprocessed as in training."""
        model_id, loaded = await self.resolve(ref, owner)
        raw = as_batch(request.inputs, loaded.preprocessing.raw_shape)
        self.check_samples(len(raw))
        if len(raw) <= self.max_batch:  # the hot path: one submit, as it always was
            return await self._batcher(model_id).submit(loaded, raw, top_k=request.top_k)
        return await self._in_chunks(model_id, loaded, _views(raw, self.max_batch), request.top_k)

    async def predict_images(
        self,
        ref: str,
        images: list[tuple[str, bytes]],
        *,
        top_k: int | None,
        owner: str | None = None,
    ) -> PredictResponse:
        """Class probabilities for image files (name, bytes), decoded to the model's raw shape
        one forward pass's worth at a time."""
        self.check_samples(len(images))
        model_id, loaded = await self.resolve(ref, owner)
        if len(images) <= self.max_batch:
            raw = await self._decode(images, loaded)
            return await self._batcher(model_id).submit(loaded, raw, top_k=top_k)
        return await self._in_chunks(model_id, loaded, self._decoded(images, loaded), top_k)

    async def _decode(self, images: list[tuple[str, bytes]], loaded: LoadedModel) -> torch.Tensor:
        return await run_in_threadpool(
            images_batch, images, loaded.preprocessing, max_pixels=self.max_image_pixels
        )

    async def _decoded(
        self, images: list[tuple[str, bytes]], loaded: LoadedModel
    ) -> AsyncIterator[torch.Tensor]:
        """The images as raw samples, `max_batch` at a time: a request's decoded pixels are
        never all in memory at once."""
        for start in range(0, len(images), self.max_batch):
            yield await self._decode(images[start : start + self.max_batch], loaded)

    async def _in_chunks(
        self,
        model_id: str,
        loaded: LoadedModel,
        chunks: AsyncIterator[torch.Tensor],
        top_k: int | None,
    ) -> PredictResponse:
        """One request's samples through the batcher a forward pass at a time, so no pass (and
        no preprocessing at network size) holds more than `max_batch` samples. Chunks are
        submitted one after the other: other clients' requests join the passes in between
        instead of waiting behind all of a large request."""
        predictions: list[Any] = []
        async for raw in chunks:
            answer = await self._batcher(model_id).submit(loaded, raw, top_k=top_k)
            predictions.extend(answer.predictions)
        return PredictResponse(model_id=model_id, predictions=predictions)

    def _batcher(self, model_id: str) -> MicroBatcher:
        batcher = self._batchers.get(model_id)
        if batcher is None:
            batcher = MicroBatcher(
                model_id,
                executor=self.executor,
                max_batch=self.max_batch,
                max_wait_s=self.max_wait_s,
                observe=self.observe_batch,
            )
            self._batchers[model_id] = batcher
        return batcher

    def forget(self, model_id: str) -> None:
        """Drop a deleted model, and every cached reference (an alias may have named it)."""
        self.cache.discard(model_id)
        self._batchers.pop(model_id, None)
        self.refs.clear()


async def _views(raw: torch.Tensor, size: int) -> AsyncIterator[torch.Tensor]:
    """`raw` in consecutive slices of at most `size` samples (views: nothing is copied)."""
    for part in raw.split(size):
        yield part
