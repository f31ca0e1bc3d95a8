"""The query shape the two MD5 formats share (``md5-token``, ``imgix``): one ``s``, the
last parameter, spelled plainly; an optional ``expires`` at most once, unix seconds in their
one spelling. What differs between them (where the token goes, which hex case) stays in
each scheme's module."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, NamedTuple

from sidecar.core.canonical import CanonicalURI, QueryParam
from sidecar.core.encodings import parse_epoch
from sidecar.core.verdict import Reason, Verdict, allow, deny
from sidecar.schemes.base import Signed, SignRequest, VerifyRequest

SIGNATURE_PARAM: Final = "s"
EXPIRES_PARAM: Final = "expires"


class Md5Query(NamedTuple):
    unsigned: bytes  # the request URI before the signature parameter: what was signed
    presented: bytes  # the digest the URL carries
    expires_at: int | None


_new: Final = tuple.__new__  # a NamedTuple without its Python-level __new__: this is the hot path


def read(uri: CanonicalURI, digest: Callable[[str], bytes | None]) -> Md5Query | Reason:
    """The signed parts of ``uri``, or why it has none; ``digest`` decodes the ``s`` value
    in the scheme's one spelling (None: malformed)."""
    signatures = 0
    expiry: QueryParam | None = None
    for param in uri.params:  # one pass: this is the hot path
        if param.name == SIGNATURE_PARAM:
            signatures += 1
        elif param.name == EXPIRES_PARAM:
            if expiry is not None:
                return Reason.NON_CANONICAL
            expiry = param
    if signatures != 1:
        return Reason.NON_CANONICAL if signatures else Reason.MISSING
    last = uri.params[-1]
    if last.raw_name != SIGNATURE_PARAM:
        return Reason.MALFORMED  # not last, or an encoded spelling of its name
    presented = digest(last.value)
    if presented is None:
        return Reason.MALFORMED
    expires_at = None
    if expiry is not None:
        expires_at = parse_epoch(expiry.value)
        if expiry.raw_name != EXPIRES_PARAM or expires_at is None:
            return Reason.MALFORMED
    return _new(Md5Query, (uri.raw[: last.start - 1].encode(), presented, expires_at))


def conclude(matched: str | None, found: Md5Query, request: VerifyRequest) -> Verdict:
    """The verdict once the key trial is done. The expiry is checked only once the
    signature holds: a forgery never learns that its expiry is what failed."""
    if matched is None:
        return deny(Reason.INVALID)
    expires_at = found.expires_at
    if expires_at is not None and request.now >= expires_at + request.clock_skew:
        return deny(Reason.EXPIRED)
    return allow(matched, expires_at, shareable=True, grant=found.presented)


def to_sign(request: SignRequest, expires: int | None) -> str:
    """The request URI a signature covers: as given without a bare ``?``, then
    ``expires`` appended when the grant has one."""
    uri = request.url.uri
    unsigned = uri.rstrip("?") if request.uri.query == "" else uri
    if expires is not None:
        unsigned += ("&" if "?" in unsigned else "?") + f"{EXPIRES_PARAM}={expires}"
    return unsigned


def signed(request: SignRequest, unsigned: str, digest: bytes) -> Signed:
    """The signed URL: ``s`` appended last, lowercase hex."""
    separator = "&" if "?" in unsigned else "?"
    return Signed(f"{request.url.origin}{unsigned}{separator}{SIGNATURE_PARAM}={digest.hex()}")
