"""Shared-secret keys of one source: newest first, looked up by id or all tried in
constant time, and named, so the metrics say which key matched (rotation)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field

from sidecar.errors import SchemeError
from sidecar.schemes.base import SourceSpec


@dataclass(frozen=True, slots=True)
class SecretKey:
    id: str
    secret: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Keyring:
    keys: tuple[SecretKey, ...]  # newest first: the first one signs
    _by_id: dict[str, SecretKey] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {key.id: key for key in self.keys})

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(key.id for key in self.keys)

    @property
    def newest(self) -> SecretKey:
        return self.keys[0]

    def get(self, key_id: str) -> SecretKey | None:
        """The key a URL names (formats that carry their key id)."""
        return self._by_id.get(key_id)

    def match(self, presented: bytes, digest: Callable[[bytes], bytes]) -> str | None:
        """The id of the key whose ``digest(secret)`` equals ``presented``. Every key is
        computed and compared, with no early exit, so timing says nothing about which."""
        matched = None
        for key in self.keys:
            if hmac.compare_digest(digest(key.secret), presented) and matched is None:
                matched = key.id
        return matched

    def shared_secrets(self) -> tuple[tuple[str, bytes], ...]:
        return tuple((key.id, key.secret) for key in self.keys)


@dataclass(frozen=True, slots=True)
class KeyringSource:
    """What every shared-secret source answers about its keys: the base of each such
    scheme's frozen dataclass, whose first field is the keyring."""

    keyring: Keyring

    @property
    def key_ids(self) -> tuple[str, ...]:
        return self.keyring.key_ids

    @property
    def expiry_required(self) -> bool:
        return True  # a scheme whose expiry is optional says so

    def shared_secrets(self) -> tuple[tuple[str, bytes], ...]:
        return self.keyring.shared_secrets()

    def public_keys(self) -> tuple[tuple[str, bytes], ...]:
        return ()


def secret_keyring(spec: SourceSpec, *, min_bytes: int = 1) -> tuple[Keyring, list[str]]:
    """The source's keys as a keyring, and every problem with them (a missing or too
    short secret), for the scheme's ``build`` to report with its own."""
    problems = [
        f"key '{key.id}': needs a secret" + (f" of {min_bytes}+ bytes" if min_bytes > 1 else "")
        for key in spec.keys
        if key.secret is None or len(key.secret) < min_bytes
    ]
    keys = tuple(SecretKey(key.id, key.secret or b"") for key in spec.keys)
    return Keyring(keys), problems


def require(problems: list[str]) -> None:
    """Raise ``SchemeError`` listing every problem, if there is any."""
    if problems:
        raise SchemeError("; ".join(problems))
