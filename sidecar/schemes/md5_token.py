"""Scheme ``md5-token``: the Secure Source token.

``s = md5_hex(path + querystring + token)`` where ``querystring`` is ``"?" + query`` of
the unsigned URL, byte for byte as on the wire (empty when there is none), and ``s`` is
appended as the last parameter. An optional ``expires`` parameter (unix seconds) is part
of the signed string and enforced.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from sidecar import canonical
from sidecar.canonical import CanonicalURI
from sidecar.schemes import (
    KeyMaterial,
    SchemeError,
    SchemeOptions,
    VerifyContext,
    register,
    split_url,
)
from sidecar.verdict import Reason, Verdict, deny

SIGNATURE_PARAM = "s"
EXPIRES_PARAM = "expires"
# Lowercase only: one spelling per signed URL (another spelling would be another cache
# key and another URL to revoke).
_HEX_DIGEST = re.compile(r"[0-9a-f]{32}")
# Unix seconds without leading zeros: up to 12 digits covers the year 33658.
_EPOCH = re.compile(r"0|[1-9][0-9]{0,11}")


def signature(unsigned_uri: bytes, token: bytes) -> bytes:
    return hashlib.md5(unsigned_uri + token, usedforsecurity=False).digest()


@dataclass(frozen=True, slots=True)
class _Key:
    id: str
    token: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Md5TokenVerifier:
    keys: tuple[_Key, ...]

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(key.id for key in self.keys)

    def verify(self, uri: CanonicalURI, context: VerifyContext) -> Verdict:
        signatures = 0
        expiry = None
        for param in uri.params:  # one pass: this is the hot path
            if param.name == SIGNATURE_PARAM:
                signatures += 1
            elif param.name == EXPIRES_PARAM:
                if expiry is not None:
                    return deny(Reason.NON_CANONICAL)
                expiry = param
        if signatures != 1:
            return deny(Reason.NON_CANONICAL if signatures else Reason.MISSING)
        last = uri.params[-1]
        if last.name != SIGNATURE_PARAM:
            return deny(Reason.MALFORMED)  # the signature must be the last parameter
        if last.raw_name != SIGNATURE_PARAM or not _HEX_DIGEST.fullmatch(last.value):
            return deny(Reason.MALFORMED)
        expires_at = None
        if expiry is not None:
            if expiry.raw_name != EXPIRES_PARAM or not _EPOCH.fullmatch(expiry.value):
                return deny(Reason.MALFORMED)
            expires_at = int(expiry.value)
        matched = self._match(uri.raw[: last.start - 1].encode(), bytes.fromhex(last.value))
        if matched is None:
            return deny(Reason.INVALID)
        if expires_at is not None and context.now >= expires_at + context.clock_skew:
            return deny(Reason.EXPIRED)
        return Verdict(Reason.OK, matched, expires_at)

    def _match(self, unsigned: bytes, presented: bytes) -> str | None:
        # Every key is tried, with no early exit, so timing says nothing about which.
        matched = None
        for key in self.keys:
            if hmac.compare_digest(signature(unsigned, key.token), presented) and matched is None:
                matched = key.id
        return matched

    def sign(
        self,
        url: str,
        *,
        expires: int | None = None,
        not_before: int | None = None,
        client_ip: str | None = None,
        resource: str | None = None,
    ) -> str:
        if not_before is not None or client_ip is not None or resource is not None:
            raise SchemeError("md5-token URLs carry only an expiry")
        origin, uri = split_url(url)
        parsed = canonical.parse(uri)
        if parsed is None:
            raise SchemeError("URL is not canonical")
        if parsed.get(SIGNATURE_PARAM) or parsed.get(EXPIRES_PARAM):
            raise SchemeError(f"URL already carries '{SIGNATURE_PARAM}' or '{EXPIRES_PARAM}'")
        unsigned = uri.rstrip("?") if parsed.query == "" else uri
        if expires is not None:
            unsigned += ("&" if "?" in unsigned else "?") + f"{EXPIRES_PARAM}={expires}"
        digest = signature(unsigned.encode(), self.keys[0].token).hex()
        separator = "&" if "?" in unsigned else "?"
        return f"{origin}{unsigned}{separator}{SIGNATURE_PARAM}={digest}"


@dataclass(frozen=True, slots=True)
class Md5TokenScheme:
    name: str = "md5-token"
    default_deny_status: int = 401
    key_fields: frozenset[str] = frozenset({"secret"})

    def build(self, keys: Sequence[KeyMaterial], options: SchemeOptions) -> Md5TokenVerifier:
        problems = [f"key '{key.id}': needs a secret" for key in keys if not key.secret]
        if options.public_origin is not None:
            problems.append("public_origin is not used by md5-token")
        if problems:
            raise SchemeError("; ".join(problems))
        return Md5TokenVerifier(tuple(_Key(key.id, key.secret or b"") for key in keys))


register(Md5TokenScheme())
