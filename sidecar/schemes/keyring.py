"""Shared-secret keys of one source: newest first, looked up by id or all tried in
constant time, and named, so the metrics say which key matched (rotation)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from hmac import compare_digest
from typing import NamedTuple

from sidecar.core import digests
from sidecar.errors import SchemeError
from sidecar.schemes.base import KeyKind, KeyMaterial, SourceKey


@dataclass(frozen=True, slots=True)
class SecretKey:
    id: str
    secret: bytes = field(repr=False)  # the bytes the scheme computes with
    # As configured, where the scheme decodes it (Google's base64url, Akamai's hex): what
    # "Show Token" shows. None: the secret itself.
    configured: bytes | None = field(default=None, repr=False)


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
            if compare_digest(digest(key.secret), presented) and matched is None:
                matched = key.id
        return matched

    def match_md5(self, message: bytes, presented: bytes) -> str | None:
        """``match`` for ``md5(message + secret)`` (md5-token), without a closure made per
        request: the path nearly every request of the most common scheme takes."""
        matched = None
        for key in self.keys:
            if compare_digest(digests.md5(message + key.secret), presented) and matched is None:
                matched = key.id
        return matched

    def shown(self) -> tuple[SourceKey, ...]:
        return tuple(
            SourceKey(key.id, KeyKind.SHARED_SECRET,
                      key.secret if key.configured is None else key.configured)
            for key in self.keys
        )  # fmt: skip


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

    def key_material(self) -> tuple[SourceKey, ...]:
        return self.keyring.shown()


class KeyIdRule(NamedTuple):
    """What a key id must be where the URL carries it (a ``kid``, Google's ``KeyName``)."""

    pattern: re.Pattern[str]
    says: str  # the rule in words, for the problem


def secret_keyring(
    keys: tuple[KeyMaterial, ...],
    *,
    min_bytes: int = 1,
    decode: Callable[[bytes], bytes | None] | None = None,
    rule: str = "",
    key_id: KeyIdRule | None = None,
    problems: Iterable[str] = (),
) -> Keyring:
    """The source's keys as a keyring; ``SchemeError`` listing every problem with them and
    the scheme's own ``problems``. ``decode`` turns a configured secret into the key bytes
    (None: not in the scheme's spelling, then ``rule`` says what it must be); the key must
    then hold ``min_bytes`` or more; ``key_id`` is the rule for the keys' ids."""
    found, loaded = list(problems), []
    for material in keys:
        if key_id is not None and not key_id.pattern.fullmatch(material.id):
            found.append(f"key '{material.id}': {key_id.says}")
        configured = material.secret or b""
        secret = decode(configured) if decode is not None else configured
        if secret is None or len(secret) < min_bytes:
            need = rule or ("a secret" + (f" of {min_bytes}+ bytes" if min_bytes > 1 else ""))
            found.append(f"key '{material.id}': needs {need}")
            continue
        loaded.append(SecretKey(material.id, secret, None if decode is None else configured))
    if found:
        raise SchemeError("; ".join(found))
    return Keyring(tuple(loaded))
