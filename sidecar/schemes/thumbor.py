"""Scheme ``thumbor``: thumbor's signed URLs.

``<path_prefix><base64url(HMAC-SHA1(key, rest))>/<rest>``: the signature is the first path
segment after the source's prefix; the URLs carry no expiry. The format, the reference
signer (``libthumbor``) and where this module is stricter than thumbor's server:
docs/schemes/thumbor.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from sidecar.core import digests
from sidecar.core.canonical import CanonicalURI
from sidecar.core.encodings import URLSAFE
from sidecar.core.verdict import Reason, Verdict, allow, deny
from sidecar.errors import SchemeError
from sidecar.schemes.base import Scheme, Signed, SignRequest, SourceSpec, VerifyRequest
from sidecar.schemes.keyring import KeyringSource, secret_keyring
from sidecar.schemes.settings import NoSettings

NAME = "thumbor"
UNSAFE = "unsafe"
SIGNATURE_LENGTH = 28  # base64 of HMAC-SHA1's 20 bytes, with its one "="
_DIGEST_SIZE = 20
# Every printable ASCII character but "%": quoting a prefix with these safe encodes only
# its non-ASCII characters, the way clients send them (%XX, uppercase hex).
_PRINTABLE = "".join(chr(code) for code in range(0x21, 0x7F) if chr(code) != "%")


def signature(key: bytes, rest: bytes) -> bytes:
    return digests.hmac_digest(key, rest, "sha1")


def encode(digest: bytes) -> str:
    return URLSAFE.encode(digest)


def _decode(text: str) -> bytes | None:
    """The 20 HMAC bytes of a 28-character padded base64url segment, or None."""
    if len(text) != SIGNATURE_LENGTH:
        return None
    data = URLSAFE.decode(text)
    return data if data is not None and len(data) == _DIGEST_SIZE else None


def _holds_segment(rest_path: str, segment: str) -> bool:
    """True when ``segment`` (or thumbor's quoted spelling of it) is a whole segment of
    ``rest_path``: thumbor's server would cut it out before checking."""
    wrapped = f"/{rest_path}/"
    return f"/{segment}/" in wrapped or f"/{segment.replace('=', '%3D')}/" in wrapped


@dataclass(frozen=True, slots=True)
class ThumborSource(KeyringSource):
    base: str  # the source's path_prefix, ending in exactly one "/"
    prefixes: frozenset[str]  # its raw spellings: as written, and non-ASCII %-encoded

    @property
    def expiry_required(self) -> bool:
        return False  # thumbor URLs carry no expiry at all

    def _after_prefix(self, uri: CanonicalURI) -> tuple[str, str] | None:
        """The raw path after the prefix and the raw query part ("?..." as sent, or ""),
        or None when the prefix is not spelled one of its ways (the signature does not
        cover the prefix: a re-spelled one, ``/th%75mbs/``, would be a second URL)."""
        raw_path = uri.raw_path
        for spelling in self.prefixes:
            if (raw_path + "/").startswith(spelling):
                return raw_path[len(spelling) :], uri.raw[len(raw_path) :]
        return None

    def verify(self, request: VerifyRequest) -> Verdict:
        found = self._after_prefix(request.uri)
        if found is None:
            return deny(Reason.MALFORMED)  # not under this source's prefix at all
        after, query = found
        presented_text, slash, rest_path = after.partition("/")
        if not slash or presented_text == UNSAFE:
            return deny(Reason.MISSING)  # no signature segment, or thumbor's unsigned form
        presented = _decode(presented_text)
        if presented is None:
            return deny(Reason.MALFORMED)
        if not rest_path or _holds_segment(rest_path, presented_text):
            return deny(Reason.MALFORMED)
        matched = self._match(presented, rest_path, query)
        if matched is None:
            return deny(Reason.INVALID)
        return allow(matched, None, shareable=True, grant=presented)

    def _match(self, presented: bytes, rest_path: str, query: str) -> str | None:
        """The key whose signature is ``presented``: over the path alone, as thumbor's
        server checks it (an appended query, a cache buster, is not covered and cannot
        change the file), else over the path and the query as sent (libthumbor's URL for an
        ``image_url`` with a query, which keeps that query pinned). The path never holds a
        "?", so the two texts can never be each other."""
        path = rest_path.encode()
        matched = self.keyring.match(presented, lambda key: signature(key, path))
        if matched is None and query not in ("", "?"):
            with_query = (rest_path + query).encode()
            matched = self.keyring.match(presented, lambda key: signature(key, with_query))
        return matched

    def sign(self, request: SignRequest) -> Signed:
        grant = request.grant
        grant.refuse_unexpressible(NAME)
        if grant.expires is not None:
            raise SchemeError(
                "thumbor URLs do not expire: sign without an expiry "
                "(a thumbor source must not set default_ttl or max_ttl)"
            )
        after, query = self._to_sign(request.uri)
        rest = after + ("" if query == "?" else query)
        digest = encode(signature(self.keyring.newest.secret, rest.encode()))
        if _holds_segment(after, digest):
            raise SchemeError("the signature would appear in the path it signs: rename the image")
        head = request.url.uri[: len(request.url.uri) - len(after + query)]
        return Signed(f"{request.url.origin}{head}{digest}/{rest}")

    def _to_sign(self, uri: CanonicalURI) -> tuple[str, str]:
        """The path after the prefix (thumbor's options and image path) and the query of
        a URL to sign; ``SchemeError`` for what could never verify."""
        found = self._after_prefix(uri)
        if found is None:
            raise SchemeError(f"URL is not under the source's prefix '{self.base}'")
        after, query = found
        first, slash, _ = after.partition("/")
        if not after:
            raise SchemeError("nothing to sign after the source's prefix: give the image path")
        if first == UNSAFE and slash:
            raise SchemeError("remove 'unsafe/': a signed thumbor URL carries a signature instead")
        if slash and _decode(first) is not None:
            raise SchemeError("URL is already signed")
        return after, query


class ThumborScheme(Scheme[NoSettings]):
    name = NAME
    expiring = False  # thumbor URLs never expire

    def build(self, spec: SourceSpec[NoSettings]) -> ThumborSource:
        base = spec.path_prefix.rstrip("/") + "/"
        return ThumborSource(
            secret_keyring(spec.keys), base, frozenset({base, quote(base, safe=_PRINTABLE)})
        )


SCHEME: ThumborScheme = ThumborScheme()
