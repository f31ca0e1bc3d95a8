"""Reload: on SIGHUP, or when the config or a key file changes (a Kubernetes Secret update
swaps a symlink: the path then names a new inode), so rotation needs no signal.

The new config is loaded off the verify loop (parsing keys costs milliseconds) and
swapped in with one reference assignment; on any problem the old one keeps serving,
counted and logged. Reloads never overlap.
"""

from __future__ import annotations

import asyncio
import time

from sidecar import config
from sidecar.config.fields import file_mark
from sidecar.errors import ConfigError
from sidecar.policy.settings import FileMark
from sidecar.runtime.state import State

# How often the config and key files are checked for changes.
WATCH_INTERVAL = 2.0


class Reloader:
    def __init__(self, state: State, path: str) -> None:
        self._state = state
        self._path = path
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Task[bool]] = set()

    def request(self) -> None:
        """Reload soon (from a signal handler, which cannot await)."""
        task = asyncio.get_running_loop().create_task(self.reload())
        self._pending.add(task)  # a reference, so the task is not collected mid-way
        task.add_done_callback(self._pending.discard)

    async def reload(self) -> bool:
        """Swap in a re-read config; on any problem keep the old one serving."""
        state = self._state
        async with self._lock:
            try:
                settings = await state.off_loop(config.load, self._path)
            except ConfigError as error:
                state.metrics.reloads.labels(result="failure").inc()
                state.log.event("reload_failed", problems=error.problems)
                return False
            await state.off_loop(state.metrics.initialise, settings)
            state.swap_decider(settings)
        state.metrics.reloads.labels(result="success").inc()
        state.metrics.last_reload.set(time.time())
        state.log.event("reload", sources=[source.name for source in settings.sources])
        return True

    async def watch(self, interval: float = WATCH_INTERVAL) -> None:
        """Reload whenever a file differs from how the serving config read it. The marks
        were taken before each file was read, so a change made during a reload is seen
        on the next check; a broken change is retried only when the files change again."""
        refused: tuple[FileMark | None, ...] | None = None
        while True:
            await asyncio.sleep(interval)
            settings = self._state.decider.settings
            current = tuple(file_mark(path) for path in settings.files)
            if current in (settings.file_marks, refused):
                continue
            self._state.log.event("files_changed")
            refused = None if await self.reload() else current
