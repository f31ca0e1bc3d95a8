"""The shared state behind ``[state]`` (docs/revocation.md): one small interface, with an
embedded default (SQLite: ``runtime/store_sqlite.py``) and a server-backed one for a
fleet (Valkey or Redis: ``runtime/store_redis.py``).

The verify loop never reads the store itself: revocations reach it as an in-memory view
(``runtime/revocation_sync.py``); only a use of a ``max_uses`` source waits on the store,
for at most ``timeout_ms`` (``runtime/uses.py``).
"""

from __future__ import annotations

import hashlib
from typing import Final, Protocol

from sidecar.errors import StoreError
from sidecar.policy.revocations import Revocation
from sidecar.policy.settings import StateSettings, UseLimit

KEY_PREFIX: Final = "signed-url"  # every key and channel the sidecar writes in Redis
__all__ = ["KEY_PREFIX", "Store", "StoreError", "open_store", "use_key"]


class Store(Protocol):
    where: str  # the store, named without a password

    async def open(self) -> None:
        """Connect and check the store (a corrupt or locked SQLite file fails here)."""

    async def revision(self) -> int:
        """A number that changes whenever the revocations change (cheap to ask)."""

    async def revocations(self) -> list[Revocation]:
        """Every stored revocation (a record not exactly ours is skipped)."""

    async def changed(self, since: int) -> tuple[list[Revocation], list[str]]:
        """What changed after revision ``since``: the records written (or rewritten), and
        the ids of those removed."""

    async def revoke(self, record: Revocation) -> None:
        """Store ``record`` (replacing one with the same id) and announce the change."""

    async def unrevoke(self, revocation_id: str) -> bool:
        """Remove one revocation; whether it existed."""

    async def prune(self, now: float) -> None:
        """Drop revocations and use records that have ended."""

    async def use(
        self, grant: bytes, client: str, limit: UseLimit, expires_at: float | None, now: float
    ) -> bool:
        """Count one use of ``grant`` (``use_key``) by ``client``: whether it is allowed.
        Exact across every process sharing the store."""

    async def wait_for_change(self, timeout: float) -> None:
        """Return when the revocations may have changed, or after ``timeout`` seconds."""

    async def close(self) -> None: ...


def use_key(source: str, grant: bytes) -> bytes:
    """What a use count is stored under: the grant within its source, at a fixed size."""
    return hashlib.sha256(source.encode() + b"\0" + grant).digest()[:20]


def open_store(settings: StateSettings) -> Store:
    """The store ``[state]`` names (not yet connected: ``await store.open()``)."""
    if settings.path is not None:
        from sidecar.runtime.store_sqlite import SqliteStore  # noqa: PLC0415

        return SqliteStore(settings.path)
    from sidecar.runtime.store_redis import RedisStore  # noqa: PLC0415

    assert settings.url is not None
    return RedisStore(settings.url, settings.where)
