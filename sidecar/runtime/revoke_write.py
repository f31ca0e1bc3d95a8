"""A revocation written by a serving process (the signing API's ``revoke`` and the
console's Revoke buttons) to the store ``[state]`` names, through the store the process
already holds open (``shared_state.py``): every sidecar sharing it denies the grant within
a second (docs/revocation.md).

Never on the verify listener: only the signing and console listeners call this, and the
write is I/O (SQLite on the store's own thread, Redis asynchronous), bounded in time, so a
store that does not answer costs the caller a refusal, never a stalled loop.
"""

from __future__ import annotations

import asyncio
from typing import Final

from sidecar.errors import SidecarError, StoreError
from sidecar.policy.revocations import Revocation
from sidecar.runtime.state import State
from sidecar.runtime.stores import Store

# Seconds. Longer than SQLite's wait for another writer's lock (``BUSY_TIMEOUT_MS``, 2 s),
# so a locked file is a definite "not written" rather than a write that may still land.
WRITE_TIMEOUT: Final = 3.0
NO_STATE: Final = (
    "revoking needs [state] in the config (path = a SQLite file, or url = Valkey/Redis), "
    "and a restart to open it"
)


class NoStateError(SidecarError):
    """This process has no store open: the config it started with has no ``[state]``."""


class StoreDownError(SidecarError):
    """The store did not take the revocation (an error, or no answer in time)."""


def open_store(state: State) -> Store | None:
    """The store this process opened at start, or None without ``[state]``. It lives in
    the use counter, which exists exactly when a store does (``start_shared_state``)."""
    return state.uses.store if state.uses is not None else None


async def write(state: State, record: Revocation, *, by: dict[str, str | int]) -> None:
    """Store ``record``; ``NoStateError`` or ``StoreDownError`` (with a message safe to show).
    ``by``: who asked, for the log line (a team, or a console admin key's label)."""
    store = open_store(state)
    if store is None:
        raise NoStateError(NO_STATE)
    try:
        async with asyncio.timeout(WRITE_TIMEOUT):
            await store.revoke(record)
    except (StoreError, TimeoutError) as error:
        state.log.event("revoke_failed", store=store.where, id=record.id, error=_why(error), **by)
        # The detail (a file path, a server address) is in the log, not in the answer.
        raise StoreDownError(
            "the state store did not take the revocation: retry (if it was slow rather "
            "than down, the revocation may be in force already)"
        ) from None
    state.log.event("revoked", store=store.where, id=record.id, source=record.source,
                    kind=record.kind.value, until=record.until, **by)  # fmt: skip


def _why(error: Exception) -> str:
    return str(error) if isinstance(error, StoreError) else f"no answer in {WRITE_TIMEOUT:g} s"
