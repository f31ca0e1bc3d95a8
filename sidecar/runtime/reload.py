"""Reload: on SIGHUP, or when the config or a key file changes (a Kubernetes Secret update
swaps a symlink: the path then names a new inode), so rotation needs no signal.

The new config is loaded off the verify loop (parsing keys costs milliseconds) and
swapped in with one reference assignment; on any problem the old one keeps serving,
counted and logged. Reloads never overlap.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import TYPE_CHECKING

from sidecar import config
from sidecar.config.fields import file_mark
from sidecar.errors import ConfigError
from sidecar.policy.decide import Decider
from sidecar.policy.settings import FileMark, Settings
from sidecar.runtime.jwks import JwksFetcher
from sidecar.runtime.state import State

if TYPE_CHECKING:  # imported only with [tracing] (runtime/tracing.py loads OpenTelemetry)
    from sidecar.runtime.tracing import Tracing

# How often the config and key files are checked for changes.
WATCH_INTERVAL = 2.0
LOGGED_SOURCE_NAMES = 20
WATCH_SLICE = 256  # files stat'd per offload job (about a millisecond)


class Reloader:
    def __init__(self, state: State, path: str) -> None:
        self._state = state
        self._path = path
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Task[bool]] = set()
        self.jwks = JwksFetcher(state)  # the key sets of jwt sources' jwks_url
        self.tracing: Tracing | None = None  # [tracing]: a span per reload

    def request(self) -> None:
        """Reload soon (from a signal handler, which cannot await)."""
        task = asyncio.get_running_loop().create_task(self.reload())
        self._pending.add(task)  # a reference, so the task is not collected mid-way
        task.add_done_callback(self._pending.discard)

    async def reload(self) -> bool:
        """Swap in a re-read config; on any problem keep the old one serving."""
        state = self._state
        started = time.time_ns()
        async with self._lock:
            # The collector is paused while a config is built: loading 10,000 sources
            # allocates a million objects, and each full collection it would trigger walks
            # the whole heap with the GIL held, pausing the verify loop for tens of ms.
            gc.disable()
            try:
                settings = await self._swap_in()
            finally:
                gc.enable()
        if self.tracing is not None:
            count = len(settings.sources) if settings is not None else None
            self.tracing.record_reload(started, settings is not None, count)
        if settings is None:
            return False
        state.metrics.reloads.labels(result="success").inc()
        state.metrics.last_reload.set(time.time())
        state.log.event("reload", **source_summary(settings))
        return True

    async def _swap_in(self) -> Settings | None:
        state = self._state
        try:
            settings = await state.off_loop(config.load, self._path)
        except ConfigError as error:
            state.metrics.reloads.labels(result="failure").inc()
            state.log.event("reload_failed", problems=error.problems)
            return None
        # Compiling the decision and creating series cost milliseconds at 10,000
        # sources: both happen off the loop; the swap itself is one assignment.
        decider = await state.off_loop(Decider, settings)
        await state.off_loop(state.metrics.initialise, settings)
        self.jwks.adopt(settings)  # the last good key sets, before a request sees the sources
        if settings.state != state.decider.settings.state:
            # The store is opened at start: a reload keeps the one this process has.
            state.log.event("state_kept", hint="[state] changed: it takes effect on restart")
        state.swap_decider(decider)
        await state.off_loop(state.metrics.forget_sources_except, settings)
        freeze_heap()
        return settings

    async def _marks(self, files: tuple[str, ...]) -> tuple[FileMark | None, ...]:
        """Each file's mark, taken off the loop in slices: one stat per key file is
        thousands with many tenants, and a thread holding the GIL for all of them at once
        would hold up the verify loop for tens of milliseconds."""
        marks: list[FileMark | None] = []
        for start in range(0, len(files), WATCH_SLICE):
            marks += await self._state.off_loop(_marks, files[start : start + WATCH_SLICE])
        return tuple(marks)

    async def watch(self, interval: float = WATCH_INTERVAL) -> None:
        """Reload whenever a file differs from how the serving config read it. The marks
        were taken before each file was read, so a change made during a reload is seen
        on the next check; a broken change is retried only when the files change again."""
        refused: tuple[FileMark | None, ...] | None = None
        fetcher = asyncio.create_task(self.jwks.run())  # the JWKS URLs are watched too
        try:
            while True:
                await asyncio.sleep(interval)
                settings = self._state.decider.settings
                current = await self._marks(settings.files)
                if current in (settings.file_marks, refused):
                    continue
                self._state.log.event("files_changed")
                refused = None if await self.reload() else current
        finally:
            fetcher.cancel()


def _marks(files: tuple[str, ...]) -> list[FileMark | None]:
    return [file_mark(path) for path in files]


def source_summary(settings: Settings) -> dict[str, object]:
    """Log fields naming the sources: every name for a few, a count and a sample for
    thousands (a 10,000-name log line helps nobody)."""
    names = [source.name for source in settings.sources]
    shown = names[:LOGGED_SOURCE_NAMES]
    if len(names) > len(shown):
        shown.append(f"... {len(names) - len(shown)} more")
    return {"source_count": len(names), "sources": shown}


def freeze_heap() -> None:
    """Move every object that exists now (the serving config) out of the collector's sight,
    so a full collection no longer walks it. A config holds no reference cycles, so a
    replaced one is still freed, by reference counting, when the last request using it
    ends."""
    gc.freeze()
