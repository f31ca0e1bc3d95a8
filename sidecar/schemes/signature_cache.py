"""Signatures a public key has already verified, so a popular signed URL or cookie pays the
RSA or ECDSA operation once instead of on every request.

Only successes are kept: every entry cost its maker a valid signature, so a forger cannot
fill the cache with attempts. It is bounded (oldest dropped first) and holds no secret. What
a signed document grants (expiry, address, resource) is not cached: the caller checks it on
every request, against the clock of that request.
"""

from __future__ import annotations

from collections.abc import Hashable

# About 600 bytes an entry (an RSA-2048 signature and its policy): under 3 MB in all.
DEFAULT_SIZE = 4096


class VerifiedSignatures:
    __slots__ = ("_entries", "_size")

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._entries: dict[Hashable, None] = {}
        self._size = size

    def __contains__(self, entry: Hashable) -> bool:
        return entry in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, entry: Hashable) -> None:
        if len(self._entries) >= self._size:
            del self._entries[next(iter(self._entries))]  # insertion order: the oldest
        self._entries[entry] = None
