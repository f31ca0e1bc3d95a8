"""The digests the schemes compute per request, by the cheapest path CPython offers.

A signed URL's message is a few dozen bytes, so what a digest costs is its setup, not its
rounds. Through ``hashlib`` and ``hmac``, OpenSSL 3 looks the algorithm up for every call:
on a 2-core test machine one MD5 of a URL took 0.75 µs that way and 0.26 µs through
CPython's own ``_md5``; one HMAC-SHA256 took 2.4 µs through ``hmac.digest`` and 0.95 µs
here, from the key's inner and outer pads hashed once and copied per message (RFC 2104
§2). Both give the same bytes (``tests/unit/core/test_digests.py`` checks them against
``hashlib`` and ``hmac`` and the RFC 4231 and RFC 2202 vectors). An interpreter built
without its own hash modules falls back to ``hashlib``.

Pure: no I/O. The pads are kept per key and algorithm, bounded; keys come from the
configuration (and SigV4's keys derived per day), so the set stays small.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from typing import Any, Final

Hasher = Callable[[bytes], Any]  # a hash object's constructor: .update(), .digest(), .copy()


def _builtin(module: str, name: str) -> Hasher:
    """CPython's own implementation (``_md5.md5``), else hashlib's."""
    try:
        found: Hasher = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return getattr(hashlib, name)  # type: ignore[no-any-return]
    return found


_MD5: Final = _builtin("_md5", "md5")
_SHA1: Final = _builtin("_sha1", "sha1")
_SHA256: Final = _builtin("_sha256", "sha256")
_SHA384: Final = _builtin("_sha512", "sha384")
_SHA512: Final = _builtin("_sha512", "sha512")
_LOWER: Final[dict[str, tuple[Hasher, int]]] = {  # the constructor and its block size
    "md5": (_MD5, 64), "sha1": (_SHA1, 64), "sha256": (_SHA256, 64),
    "sha384": (_SHA384, 128), "sha512": (_SHA512, 128),
}  # fmt: skip
# hashlib's names, in either case (JWT's algorithm table says "SHA256").
_HASHERS: Final = {**_LOWER, **{name.upper(): found for name, found in _LOWER.items()}}
_IPAD: Final = bytes(byte ^ 0x36 for byte in range(256))
_OPAD: Final = bytes(byte ^ 0x5C for byte in range(256))
_PADS: Final[dict[tuple[bytes, str], tuple[Any, Any]]] = {}
_MAX_PADS: Final = 4096


def md5(data: bytes) -> bytes:
    return _MD5(data).digest()  # type: ignore[no-any-return]


def sha256(data: bytes) -> bytes:
    return _SHA256(data).digest()  # type: ignore[no-any-return]


def hmac_digest(key: bytes, message: bytes, algorithm: str) -> bytes:
    """``hmac.digest(key, message, algorithm)`` for md5, sha1, sha256, sha384, sha512
    (either case)."""
    pads = _PADS.get((key, algorithm))
    if pads is None:
        pads = _pads(key, algorithm)
    inner = pads[0].copy()
    inner.update(message)
    outer = pads[1].copy()
    outer.update(inner.digest())
    return outer.digest()  # type: ignore[no-any-return]


def _pads(key: bytes, algorithm: str) -> tuple[Any, Any]:
    """The hash states after the key XOR ipad and XOR opad blocks (RFC 2104 §2)."""
    new, block = _HASHERS[algorithm]
    padded = (new(key).digest() if len(key) > block else key).ljust(block, b"\0")
    pads = (new(padded.translate(_IPAD)), new(padded.translate(_OPAD)))
    if len(_PADS) >= _MAX_PADS:  # many SigV4 days and regions: start over, stay bounded
        _PADS.clear()
    _PADS[(key, algorithm)] = pads
    return pads
