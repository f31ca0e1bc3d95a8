"""Feed the console's history: every ``INTERVAL`` seconds of the wall clock, one read of
the summed counts into the ring, done in the offload pool.

Nothing runs per request: ``/verify`` only counts, as it always did. The timer is one
sleeping task of the console's application (started and stopped with it); the read and
the arithmetic (milliseconds with thousands of sources, and with workers, their files to
merge) run in the offload pool, off the verify loop. Each worker keeps its own ring of
the same summed counts, so whichever worker serves a page draws the same charts; one
started later has a shorter history.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from aiohttp import web

from sidecar.runtime.console import numbers
from sidecar.runtime.console.history import INTERVAL, History
from sidecar.runtime.metrics import Metrics
from sidecar.runtime.state import STATE, State

HISTORY = web.AppKey("console_history", History)


async def sampling(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: the sampling task, for as long as the console runs. The first read
    (the baseline) is taken before the verify listener opens, so every request this
    process answers falls in a sample."""
    history, state = app[HISTORY], app[STATE]
    await _sample_logged(state, history)
    task = asyncio.create_task(_sample_forever(state, history))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _sample_forever(state: State, history: History) -> None:
    while True:
        await asyncio.sleep(until_next(time.time()))
        await _sample_logged(state, history)


async def _sample_logged(state: State, history: History) -> None:
    try:
        await state.off_loop(sample, state.metrics, history)
    except Exception as error:  # a failed read skips one sample (never stops the service)
        state.log.event("console_sample_failed", error=f"{type(error).__name__}: {error}")


def until_next(now: float) -> float:
    """Seconds to the next multiple of INTERVAL (every worker samples at the same
    moments), at least half an interval away (a sample of a few milliseconds would make
    a few requests look like a flood)."""
    wait = INTERVAL - now % INTERVAL
    return wait if wait >= INTERVAL / 2 else wait + INTERVAL


def sample(metrics: Metrics, history: History) -> None:
    history.add(numbers.read(metrics.snapshot()), time.time())
