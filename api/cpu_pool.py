"""CPU work of the API (charts, sweep checks, exports, parameter tables) in a few threads of its
own, never on the event loop and never in the threadpool that serves the database.

Forty chart requests at once would otherwise render forty figures in forty threads, every one
fighting the event loop for the GIL, and hold every thread the database work needs. Here at most
`workers` run at once; the rest wait in the queue as plain coroutines, holding no thread, no
database connection, and nothing of the event loop's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")


class CpuPool:
    """A bounded pool for the API's CPU-bound work (`D2L_CPU_WORKERS` threads)."""

    def __init__(self, workers: int) -> None:
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix="d2l-cpu")

    async def run(self, work: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """`work(*args, **kwargs)` in the pool; a request that goes away before its turn is
        dropped from the queue."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, partial(work, *args, **kwargs))
