"""Console sessions: stateless, signed, and the same in every worker.

A session cookie is ``<expires>.<key index>.<nonce>.<mac>``: the MAC (HMAC-SHA256 under
a random secret the workers share) covers the expiry, the index of the admin key that
logged in, a nonce, and that key's configured hash. So any worker can check a session
without shared storage, and removing a key from ``[admin] api_key_sha256`` (then a
reload) ends its sessions. The CSRF token is a second MAC over the cookie: per session,
never stored, and useless without the cookie. A logout is the one thing remembered: its
``session_id`` goes to ``revoked.py``.

The clock is passed in (``now``); nothing here reads the environment but
``session_secret``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence

# Set by the worker supervisor so every worker signs sessions with the same secret; a
# single process makes its own. Random per start: restarting ends every session.
SESSION_SECRET_ENV = "SIDECAR_CONSOLE_SESSION_SECRET"  # noqa: S105 (a variable name)
SESSION_LIFETIME = 30 * 60  # seconds: short, an operator logs in again after a break
COOKIE_NAME = "sidecar_console"
_SECRET_HEX = re.compile(r"[0-9a-f]{64}")
_COOKIE = re.compile(r"([0-9]{1,12})\.([0-9]{1,4})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})")


def new_secret_hex() -> str:
    """A fresh 256-bit secret, as the supervisor hands it to its workers."""
    return secrets.token_hex(32)


def session_secret(environ: Mapping[str, str]) -> bytes:
    """The shared secret from the supervisor, or a fresh one for a single process. A
    malformed value is not used (a weak or truncated secret would sign forgeable
    sessions): a fresh one is made instead, and sessions then stay within one worker."""
    text = environ.get(SESSION_SECRET_ENV, "")
    return bytes.fromhex(text) if _SECRET_HEX.fullmatch(text) else secrets.token_bytes(32)


def match_api_key(presented: str, hashes: Sequence[bytes]) -> int | None:
    """The index of the configured hash the key matches. Every hash is compared in
    constant time, with no early exit (as the signing API does)."""
    if not presented:
        return None
    digest = hashlib.sha256(presented.encode(errors="surrogateescape")).digest()
    found = None
    for index, expected in enumerate(hashes):
        if hmac.compare_digest(digest, expected) and found is None:
            found = index
    return found


class Sessions:
    """Issue and check session cookies and their CSRF tokens under one secret."""

    def __init__(self, secret: bytes, lifetime: int = SESSION_LIFETIME) -> None:
        self._secret = secret
        self.lifetime = lifetime

    def issue(self, index: int, key_hash: bytes, now: float) -> str:
        expires = int(now) + self.lifetime
        nonce = secrets.token_urlsafe(16)
        return f"{expires}.{index}.{nonce}.{self._mac(expires, index, nonce, key_hash)}"

    def check(self, cookie: str | None, hashes: Sequence[bytes], now: float) -> int | None:
        """The admin key index of a valid, unexpired session; None for anything else."""
        found = _COOKIE.fullmatch(cookie or "")
        if found is None:
            return None
        expires, index, nonce, mac = int(found[1]), int(found[2]), found[3], found[4]
        if not now < expires <= now + self.lifetime or index >= len(hashes):
            return None
        expected = self._mac(expires, index, nonce, hashes[index])
        return index if hmac.compare_digest(mac, expected) else None

    def csrf_token(self, cookie: str) -> str:
        return _b64(hmac.digest(self._secret, b"csrf|" + cookie.encode(), "sha256"))

    def check_csrf(self, cookie: str, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(
            token.encode(errors="surrogateescape"), self.csrf_token(cookie).encode()
        )

    def _mac(self, expires: int, index: int, nonce: str, key_hash: bytes) -> str:
        message = f"session|{expires}|{index}|{nonce}|".encode() + key_hash
        return _b64(hmac.digest(self._secret, message, "sha256"))


def session_id(cookie: str) -> str | None:
    """What names a session once it is logged out: ``<expires>.<nonce>`` (safe as a file
    name: digits, a dot, base64url), or None for what is not a session cookie."""
    found = _COOKIE.fullmatch(cookie)
    return f"{found[1]}.{found[3]}" if found is not None else None


def key_label(key_hash: bytes) -> str:
    """How logs name an admin key: the start of its configured hash (the config holds the
    hash, never the key), enough to find the line in ``api_key_sha256``."""
    return key_hash.hex()[:12]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
