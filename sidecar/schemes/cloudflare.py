"""Scheme ``cloudflare``: Cloudflare's timed HMAC token.

``verify=<time>-<mac>``, the last parameter, where ``mac`` is
``base64(HMAC-SHA256(secret, message + time))`` percent-encoded, ``message`` the request
URI before ``?verify=`` (or ``&verify=``) and ``time`` the unix second the URL was issued.
That is what the WAF function ``is_timed_hmac_valid_v0`` checks (separator length
``len(param) + 2``) and what Cloudflare's signed-URL Worker example writes. A URL is
valid for ``max_age`` seconds after ``time``. The format, its one spelling and the
answers: docs/schemes/cloudflare.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from sidecar.core import digests
from sidecar.core.canonical import CanonicalURI, QueryParam
from sidecar.core.encodings import STANDARD, parse_epoch
from sidecar.core.verdict import Reason, Verdict, allow, deny
from sidecar.errors import SchemeError
from sidecar.schemes.base import Scheme, Signed, SignRequest, SourceSpec, VerifyRequest
from sidecar.schemes.keyring import KeyringSource, secret_keyring
from sidecar.schemes.settings import setting

NAME = "cloudflare"
DIGEST_SIZE: Final = 32
# The three base64 characters a query value cannot carry as they are, in the one
# spelling encodeURIComponent and URLSearchParams give them (uppercase hex).
_ESCAPES: Final = (("+", "%2B"), ("/", "%2F"), ("=", "%3D"))
_PARAM_NAME: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _param_problem(value: str) -> str | None:
    return None if _PARAM_NAME.fullmatch(value) else "must be 1-64 letters, digits, '_', '.', '-'"


def _max_age_problem(value: int) -> str | None:
    return None if value > 0 else "must be a positive number of seconds"


@dataclass(frozen=True, slots=True)
class CloudflareSettings:
    # The query parameter the token travels in (the Worker example's and WAF docs' name).
    param: str = setting("verify", check=_param_problem)
    # Seconds a URL stays valid after the time it carries (the WAF rule's lifetime).
    max_age: int = setting(0, check=_max_age_problem, required=True)


def mac(secret: bytes, message: bytes, issued: int) -> bytes:
    """The MAC over the message (the URI before the separator) and the issue time."""
    return digests.hmac_digest(secret, message + str(issued).encode("ascii"), "sha256")


def encode_mac(digest: bytes) -> str:
    """Standard padded base64, its ``+ / =`` percent-encoded for the query."""
    text = STANDARD.encode(digest)
    for char, escape in _ESCAPES:
        text = text.replace(char, escape)
    return text


def decode_mac(text: str) -> bytes | None:
    """The MAC from its one spelling in the query, or None: a raw ``+ / =``, any other
    escape or lowercase hex is a second spelling of the same token."""
    if any(char in text for char, _ in _ESCAPES):
        return None
    for char, escape in _ESCAPES:
        text = text.replace(escape, char)
    if "%" in text:
        return None
    digest = STANDARD.decode(text)
    return digest if digest is not None and len(digest) == DIGEST_SIZE else None


@dataclass(frozen=True, slots=True)
class CloudflareSource(KeyringSource):
    settings: CloudflareSettings

    def _token(self, uri: CanonicalURI) -> QueryParam | Reason:
        """The one token parameter, last and spelled plainly, or why not."""
        name = self.settings.param
        found = [param for param in uri.params if param.name == name]
        if not found:
            return Reason.MISSING
        if len(found) > 1:
            return Reason.NON_CANONICAL
        token = found[0]
        if token is not uri.params[-1] or token.raw_name != name:
            return Reason.MALFORMED  # not last, or an encoded spelling of its name
        return token

    def verify(self, request: VerifyRequest) -> Verdict:
        token = self._token(request.uri)
        if isinstance(token, Reason):
            return deny(token)
        issued_text, dash, mac_text = token.value.partition("-")
        issued, presented = parse_epoch(issued_text), decode_mac(mac_text)
        if not dash or issued is None or presented is None:
            return deny(Reason.MALFORMED)
        at: int = issued
        message = request.uri.raw[: token.start - 1].encode()
        matched = self.keyring.match(presented, lambda secret: mac(secret, message, at))
        if matched is None:
            return deny(Reason.INVALID)
        # Read only once the signature holds: a forgery never learns its time failed.
        if at > request.now + request.clock_skew:
            return deny(Reason.NOT_YET_VALID)
        expires = at + self.settings.max_age
        if request.now >= expires + request.clock_skew:
            return deny(Reason.EXPIRED)
        return allow(matched, expires, shareable=True, grant=presented)

    def sign(self, request: SignRequest) -> Signed:
        grant = request.grant
        grant.refuse_unexpressible(NAME)
        if grant.expires is None:
            raise SchemeError("cloudflare URLs need an expiry (they carry their issue time)")
        issued = grant.expires - self.settings.max_age
        if issued < 0:
            raise SchemeError("expiry too early for this source's max_age")
        if request.uri.get(self.settings.param) is not None:
            raise SchemeError(f"URL already carries '{self.settings.param}'")
        uri = request.url.uri
        unsigned = uri.rstrip("?") if request.uri.query == "" else uri
        digest = mac(self.keyring.newest.secret, unsigned.encode(), issued)
        separator = "&" if "?" in unsigned else "?"
        token = f"{self.settings.param}={issued}-{encode_mac(digest)}"
        return Signed(f"{request.url.origin}{unsigned}{separator}{token}")


class CloudflareScheme(Scheme[CloudflareSettings]):
    name = NAME
    settings_type = CloudflareSettings

    def build(self, spec: SourceSpec[CloudflareSettings]) -> CloudflareSource:
        return CloudflareSource(secret_keyring(spec.keys), spec.settings)


SCHEME: CloudflareScheme = CloudflareScheme()
