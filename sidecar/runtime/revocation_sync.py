"""Keeps the verify loop's view of the revocations current, in the background.

The loop only ever reads ``Decider.revocations``, an in-memory ``RevokedView``. This task
reads what changed whenever the store's revision moves (woken by the store's change feed,
and looking at least every second), everything at start and every
``FULL_READ_INTERVAL``, keeps the records in force, builds the new view from them in the
offload pool, and swaps it in whole. When the
store does not answer, the last view read stays in force and
``signed_url_state_age_seconds`` grows; the task keeps trying and heals by itself.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge

from sidecar.errors import StoreError
from sidecar.policy.revocations import Revocation, RevokedView
from sidecar.runtime.logs import JsonLog
from sidecar.runtime.state import State
from sidecar.runtime.stores import Store

# Seconds between two full reads when the revision has not moved. The revision is what
# says a change happened; this read only heals a store that lost its data and came back
# with a revision that happens to equal the last one seen.
FULL_READ_INTERVAL: Final = 600.0
PRUNE_INTERVAL: Final = 300.0  # seconds between two removals of ended revocations and uses
RETRY_INTERVAL: Final = 1.0  # seconds between two tries while the store does not answer
ERROR_LOG_INTERVAL: Final = 60.0  # seconds between two state_error log lines


@dataclass
class StateMetrics:
    """The store's health, for the dashboard and its alert (docs/metrics.md)."""

    registry: CollectorRegistry
    errors: Counter = field(init=False)
    age: Gauge = field(init=False)
    active: Gauge = field(init=False)

    def __post_init__(self) -> None:
        self.errors = Counter(
            "signed_url_state_errors",
            "State store operations that failed (sync: reading revocations; use: counting "
            "a use of a max_uses source; prune).",
            ["operation"],
            registry=self.registry,
        )
        self.age = Gauge(
            "signed_url_state_age_seconds",
            "Seconds since the revocations in force were last read from the store.",
            registry=self.registry,
            multiprocess_mode="livemax",  # the stalest live worker (a dead one's file goes)
        )
        self.active = Gauge(
            "signed_url_revocations_active",
            "Revocations in force (grants, keys and prefixes), as last read.",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        for operation in ("sync", "use", "prune"):
            self.errors.labels(operation)
        self._logged = float("-inf")

    def failed(self, operation: str, error: StoreError, log: JsonLog) -> None:
        """Count a failed operation; log it, at most once a minute (a store down under
        load fails thousands of times a second)."""
        self.errors.labels(operation).inc()
        now = time.monotonic()
        if now - self._logged >= ERROR_LOG_INTERVAL:
            self._logged = now
            log.event("state_error", operation=operation, error=str(error))


@dataclass
class RevocationSync:
    state: State
    store: Store
    metrics: StateMetrics
    read_at: float = float("-inf")  # time.time() of the last successful read
    _revision: int | None = None
    _records: dict[str, Revocation] = field(default_factory=dict)
    _full_read: float = float("-inf")  # monotonic
    _pruned: float = field(default_factory=time.monotonic)

    async def first_read(self) -> None:
        """The view before serving: retried until the store answers (never serve
        without the revocations: a revoked grant would pass)."""
        while not await self.step():
            await asyncio.sleep(RETRY_INTERVAL)

    async def run(self) -> None:
        while True:
            ok = await self.step()
            self.metrics.age.set(max(0.0, time.time() - self.read_at))
            if ok:
                await self.store.wait_for_change(FULL_READ_INTERVAL)
            else:
                await asyncio.sleep(RETRY_INTERVAL)

    async def step(self) -> bool:
        """Read the revocations if they changed (or are due): whether the store answered."""
        try:
            revision = await self.store.revision()
            last = self._revision
            # A revision that went back is a store that lost its data: read it all.
            due = time.monotonic() - self._full_read >= FULL_READ_INTERVAL
            if last is None or due or revision < last:
                self._records = {record.id: record for record in await self.store.revocations()}
                self._full_read = time.monotonic()
            elif revision != last:
                written, removed = await self.store.changed(last)
                for record in written:
                    self._records[record.id] = record
                for revocation_id in removed:
                    self._records.pop(revocation_id, None)
            if revision != last or due:
                view = await self.state.off_loop(RevokedView, self._records.values(), time.time())
                self.state.set_revocations(view)
                self.metrics.active.set(view.count)
                self._revision = revision
            self.read_at = time.time()
            await self._prune()
        except StoreError as error:
            self.metrics.failed("sync", error, self.state.log)
            return False
        return True

    async def _prune(self) -> None:
        if time.monotonic() - self._pruned < PRUNE_INTERVAL:
            return
        self._pruned = time.monotonic()
        try:
            await self.store.prune(time.time())
        except StoreError as error:
            self.metrics.failed("prune", error, self.state.log)
