"""``[state]`` brought up for a serving process: the store opened and checked, the
revocations read once before any request is answered, their sync started, and the use
counter of ``max_uses`` sources handed to the state (docs/revocation.md)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from sidecar.errors import StoreError
from sidecar.policy.settings import StateSettings
from sidecar.runtime.revocation_sync import RETRY_INTERVAL, RevocationSync, StateMetrics
from sidecar.runtime.state import State
from sidecar.runtime.stores import Store, open_store
from sidecar.runtime.uses import UseCounter


@dataclass
class SharedState:
    store: Store
    sync: asyncio.Task[None]

    async def close(self) -> None:
        self.sync.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.sync
        await self.store.close()


async def start_shared_state(state: State, settings: StateSettings) -> SharedState:
    """Raises ``StoreError`` for a SQLite file that cannot be used (corrupt, locked, not
    writable): a clear error at start. A Valkey/Redis server that does not answer yet is
    waited for: nothing is served without the revocations in force."""
    store = open_store(settings)
    metrics = StateMetrics(state.metrics.registry)
    await _open(store, state, embedded=settings.path is not None)
    sync = RevocationSync(state, store, metrics)
    await sync.first_read()
    state.uses = UseCounter(store, settings.timeout_ms / 1000, metrics, state.log)
    revocations = state.revocations.count if state.revocations is not None else 0
    state.log.event("state_ready", store=store.where, revocations=revocations)
    return SharedState(store, asyncio.create_task(sync.run()))


async def _open(store: Store, state: State, *, embedded: bool) -> None:
    waiting = False
    while True:
        try:
            await store.open()
            return
        except StoreError as error:
            if embedded:
                raise
            if not waiting:
                waiting = True
                state.log.event("state_waiting", store=store.where, error=str(error))
            await asyncio.sleep(RETRY_INTERVAL)
