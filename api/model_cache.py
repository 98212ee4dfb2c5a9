"""Loaded models kept in the API process, least recently used first out, bounded in bytes.

A count bound alone lets one ResNet push a small machine over its memory where eight LeNets
would not; the byte bound is what matters, the count bound stays as a second cap.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from core.serving.inference import LoadedModel


class ModelCache:
    """A thread-safe LRU of loaded models whose weights together stay under `max_bytes`.

    A model larger than the whole budget is served but not kept (it would evict everything and
    still not fit)."""

    def __init__(self, *, max_bytes: int, max_models: int) -> None:
        self.max_bytes = max_bytes
        self.max_models = max_models
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model_id: str) -> LoadedModel | None:
        """The model if loaded, now the most recently used."""
        with self._lock:
            loaded = self._models.get(model_id)
            if loaded is not None:
                self._models.move_to_end(model_id)
            return loaded

    def put(self, model_id: str, loaded: LoadedModel) -> list[str]:
        """Keep `loaded`, evicting the least recently used until it fits; returns evicted ids."""
        if loaded.nbytes > self.max_bytes:
            return []
        evicted = []
        with self._lock:
            self._models[model_id] = loaded
            self._models.move_to_end(model_id)
            while len(self._models) > self.max_models or self._bytes() > self.max_bytes:
                oldest, _ = self._models.popitem(last=False)
                evicted.append(oldest)
        return evicted

    def discard(self, model_id: str) -> None:
        with self._lock:
            self._models.pop(model_id, None)

    def model_ids(self) -> list[str]:
        """Loaded models, least recently used first."""
        with self._lock:
            return list(self._models)

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return self._bytes()

    def _bytes(self) -> int:
        return sum(loaded.nbytes for loaded in self._models.values())


class RefCache:
    """What each model reference (id or alias) meant a moment ago, for `ttl_s` seconds.

    The predict path would otherwise ask the database on every request; with a short TTL an
    alias moved or a model deleted by another API process takes effect within `ttl_s`, and
    at once in the process that made the change (it calls `clear`)."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._refs: dict[str, tuple[str, float]] = {}

    def get(self, ref: str) -> str | None:
        entry = self._refs.get(ref)
        if entry is None or time.monotonic() - entry[1] > self.ttl_s:
            return None
        return entry[0]

    def put(self, ref: str, model_id: str) -> None:
        if len(self._refs) > 10_000:  # ids and names a client made up must not grow it forever
            self._refs.clear()
        self._refs[ref] = (model_id, time.monotonic())

    def clear(self) -> None:
        self._refs.clear()
