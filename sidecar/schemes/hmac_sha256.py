"""Scheme ``hmac-sha256``: our recommended format for new signers.

``sig = base64url_nopad(HMAC_SHA256(secret, path + "?" + query + "&expires=E&kid=K"))``,
the last parameter. The format in full, and the answers: docs/schemes/hmac-sha256.md.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from sidecar.core import digests
from sidecar.core.canonical import QueryParam
from sidecar.core.encodings import URLSAFE_NOPAD, parse_epoch
from sidecar.core.verdict import Reason, Verdict, allow, deny
from sidecar.errors import SchemeError
from sidecar.schemes.base import Scheme, Signed, SignRequest, SourceSpec, VerifyRequest
from sidecar.schemes.keyring import KeyIdRule, KeyringSource, secret_keyring
from sidecar.schemes.settings import NoSettings

NAME = "hmac-sha256"
EXPIRES, KEY_ID, SIGNATURE = "expires", "kid", "sig"
SIGNING_PARAMS = frozenset({EXPIRES, KEY_ID, SIGNATURE})
_DIGEST_SIZE = 32
# A key id travels in the URL unencoded: the config's id rule, nothing to escape.
_KEY_ID = KeyIdRule(
    re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"), "a kid is letters, digits, '_', '.', '-'"
)
# Shorter HMAC keys are guessable offline from one signed URL.
MIN_SECRET_BYTES = 16


def signature(secret: bytes, unsigned_uri: bytes) -> bytes:
    return digests.hmac_digest(secret, unsigned_uri, "sha256")


@dataclass(frozen=True, slots=True)
class HmacSha256Source(KeyringSource):
    def verify(self, request: VerifyRequest) -> Verdict:
        uri = request.uri
        found: dict[str, QueryParam] = {}
        for param in uri.params:  # one pass: each signing parameter at most once
            if param.name in SIGNING_PARAMS:
                if param.name in found:
                    return deny(Reason.NON_CANONICAL)
                found[param.name] = param
        if len(found) != len(SIGNING_PARAMS):
            return deny(Reason.MISSING)
        if uri.params[-1] is not found[SIGNATURE]:
            return deny(Reason.MALFORMED)  # the signature must be the last parameter
        if any(param.raw_name != name for name, param in found.items()):
            return deny(Reason.MALFORMED)  # an encoded spelling of a signing parameter
        presented = URLSAFE_NOPAD.decode(found[SIGNATURE].value)
        expires = parse_epoch(found[EXPIRES].value)
        if presented is None or len(presented) != _DIGEST_SIZE or expires is None:
            return deny(Reason.MALFORMED)
        key = self.keyring.get(found[KEY_ID].value)
        if key is None:
            return deny(Reason.UNKNOWN_KEY)
        unsigned = uri.raw[: found[SIGNATURE].start - 1].encode()
        if not hmac.compare_digest(signature(key.secret, unsigned), presented):
            return deny(Reason.INVALID)
        # Checked only once the signature holds: a forgery never learns its expiry failed.
        if request.now >= expires + request.clock_skew:
            return deny(Reason.EXPIRED)
        return allow(key.id, expires, shareable=True, grant=presented)

    def sign(self, request: SignRequest) -> Signed:
        grant = request.grant
        grant.refuse_unexpressible(NAME)
        if grant.expires is None:
            raise SchemeError("hmac-sha256 URLs need an expiry")
        if any(request.uri.get(name) for name in SIGNING_PARAMS):
            raise SchemeError("URL already carries 'expires', 'kid' or 'sig'")
        key = self.keyring.newest
        uri = request.url.uri
        unsigned = uri.rstrip("?") if request.uri.query == "" else uri
        separator = "&" if "?" in unsigned else "?"
        unsigned += f"{separator}{EXPIRES}={grant.expires}&{KEY_ID}={key.id}"
        sig = URLSAFE_NOPAD.encode(signature(key.secret, unsigned.encode()))
        return Signed(f"{request.url.origin}{unsigned}&{SIGNATURE}={sig}")


class HmacSha256Scheme(Scheme[NoSettings]):
    name = NAME
    key_ids_in_url = True  # kid

    def build(self, spec: SourceSpec[NoSettings]) -> HmacSha256Source:
        return HmacSha256Source(
            secret_keyring(spec.keys, min_bytes=MIN_SECRET_BYTES, key_id=_KEY_ID)
        )


SCHEME: HmacSha256Scheme = HmacSha256Scheme()
