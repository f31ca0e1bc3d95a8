"""Counting the uses of a ``max_uses`` source's grants (docs/revocation.md, "Usage limits").

An allow of such a source is final only once the store has counted it: ``used_up`` when
the grant has had its uses, ``unavailable`` when the store does not answer within
``timeout_ms`` (never an allow counted blind, and never a 500, which nginx would turn
into an error page rather than a denial).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from sidecar.core.verdict import Reason
from sidecar.errors import StoreError
from sidecar.policy.decide import Decision, Outcome
from sidecar.runtime.logs import JsonLog
from sidecar.runtime.revocation_sync import StateMetrics
from sidecar.runtime.stores import Store, use_key

USE_RECORD_MARGIN = 3600  # seconds: [server] clock_skew's upper bound (config/loader.py)


@dataclass
class UseCounter:
    store: Store
    timeout: float  # seconds
    metrics: StateMetrics
    log: JsonLog

    async def count(self, decision: Decision, client: str | None) -> Decision:
        """``decision`` (a counted allow) made final."""
        source, verdict = decision.source, decision.counted
        assert source is not None and source.uses is not None and verdict is not None
        grant = use_key(source.name, verdict.grant)
        try:
            async with asyncio.timeout(self.timeout):
                allowed = await self.store.use(
                    grant, client or "", source.uses, _kept_until(verdict.expires_at), time.time()
                )
        except (StoreError, TimeoutError) as error:
            failure = error if isinstance(error, StoreError) else StoreError("use: timed out")
            self.metrics.failed("use", failure, self.log)
            return Decision(source.deny_status, Reason.UNAVAILABLE, Outcome.DENY, source)
        if not allowed:
            return Decision(source.deny_status, Reason.USED_UP, Outcome.DENY, source)
        return decision._replace(counted=None)


def _kept_until(expires_at: int | None) -> float | None:
    """How long a grant's uses are kept: past its expiry by the largest clock skew a config
    may allow, since a grant is still accepted that long after it (a record gone early
    would count its uses again from zero)."""
    return None if expires_at is None else expires_at + USE_RECORD_MARGIN
