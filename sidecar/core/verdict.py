"""The decision vocabulary shared by the core, the HTTP answer and the metrics.

One bounded set of reasons names the ``X-Signature-Result`` header value and the
``result`` metric label, so the same word travels from code to dashboard.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, NamedTuple


class Reason(StrEnum):
    OK = "ok"
    MISSING = "missing"
    MALFORMED = "malformed"
    INVALID = "invalid"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    IP_MISMATCH = "ip_mismatch"
    UNKNOWN_KEY = "unknown_key"
    NO_SOURCE = "no_source"
    METHOD = "method"
    NON_CANONICAL = "non_canonical"
    UNSIGNED_ALLOWED = "unsigned_allowed"
    # A valid grant, refused by a source's rules (sidecar/policy/rules.py).
    REFERRER = "referrer"
    NETWORK = "network"
    COUNTRY = "country"
    # A valid grant taken back, or used up (sidecar/policy/revocations.py, runtime/uses.py).
    REVOKED = "revoked"
    USED_UP = "used_up"
    UNAVAILABLE = "unavailable"  # a use could not be counted: the store did not answer


class Verdict(NamedTuple):
    """What a scheme concluded about one request.

    ``key_id`` names the key that matched (only on ``ok``); ``expires_at`` is the
    grant's own expiry in unix seconds, if it carries one. ``shareable`` says whether
    this allow may be served from the auth cache to *another* request with the same URI:
    false (the default, failing closed) for a grant bound to the client's address or
    carried in a cookie, since the cache key holds neither. ``grant`` (only on ``ok``) is
    the verified signature in its one spelling (decoded bytes; an ECDSA ``s`` in its low
    form): what a revocation or a use count names.
    """

    reason: Reason
    key_id: str | None = None
    expires_at: int | None = None
    shareable: bool = False
    grant: bytes = b""

    @property
    def valid(self) -> bool:
        return self.reason is _OK


_new: Final = tuple.__new__
_OK: Final = Reason.OK  # a module constant: an enum member read off its class costs ~90 ns


def deny(reason: Reason) -> Verdict:
    return _DENIALS[reason]


def allow(key_id: str, expires_at: int | None, *, shareable: bool, grant: bytes) -> Verdict:
    """A valid signature; each scheme says explicitly whether the allow may be shared,
    and which signature it verified (``grant``)."""
    # Without the NamedTuple's Python-level __new__: nearly every request is an allow.
    return _new(Verdict, (_OK, key_id, expires_at, shareable, grant))


_DENIALS: Final = {reason: Verdict(reason) for reason in Reason}
