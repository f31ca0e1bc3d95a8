"""CPU-heavy work off the verify loop: signing batches, metrics scrapes, config loads.

``/verify`` answers synchronously on the event loop, so anything that holds the loop for
milliseconds (an RSA-4096 signature, 100 of them in a batch, a scrape of thousands of
series, parsing keys on reload) is run in a small thread pool instead. pyca/cryptography
and hashlib release the GIL while they compute, so the loop keeps answering meanwhile.
At most ``workers`` jobs run at once; callers beyond that wait their turn.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def default_workers() -> int:
    """Every core but the one the verify loop needs (at least one, at most four)."""
    return max(1, min(4, (os.cpu_count() or 1) - 1))


class Offload:
    def __init__(self, workers: int | None = None) -> None:
        workers = workers or default_workers()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="sidecar-offload")
        self._slots = asyncio.Semaphore(workers)

    async def run(self, function: Callable[..., T], *args: object) -> T:
        async with self._slots:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, functools.partial(function, *args))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
