"""Scheme ``imgix``: imgix's secure URLs.

``s = md5_hex(token + path + ("?" + query if any))``, the token FIRST, ``s`` last in
lowercase hex; an optional signed ``expires``. The format, the reference signer (the
``imgix`` library) and answers: docs/schemes/imgix.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sidecar.core import digests
from sidecar.core.canonical import CanonicalURI
from sidecar.core.encodings import parse_epoch
from sidecar.core.verdict import Reason, Verdict, deny
from sidecar.errors import SchemeError
from sidecar.schemes import md5_query
from sidecar.schemes.base import Scheme, Signed, SignRequest, SourceSpec, VerifyRequest
from sidecar.schemes.keyring import KeyringSource, secret_keyring
from sidecar.schemes.settings import NoSettings

NAME = "imgix"
SIGNATURE_PARAM = md5_query.SIGNATURE_PARAM
EXPIRES_PARAM = md5_query.EXPIRES_PARAM
_LOWER_HEX_MD5 = re.compile(r"[0-9a-f]{32}")


def _lower_hex_digest(text: str) -> bytes | None:
    return bytes.fromhex(text) if _LOWER_HEX_MD5.fullmatch(text) else None


def signature(token: bytes, unsigned_uri: bytes) -> bytes:
    """imgix's MD5 over the token, then the path and query as sent."""
    # MD5(secret + message) is length-extendable: from one signed URL, without the token,
    # anyone can sign that URL's text + MD5's padding + any suffix (``&w=4000``). What
    # stops it is the canonical gate, which this scheme relies on: the padding holds
    # 0x80 and NUL bytes, and the gate refuses every URI carrying bytes that are not
    # UTF-8 or are controls, so the forged text never reaches this hash (percent-encoded,
    # it is other bytes). Keep the gate shut: tests/unit/schemes/test_imgix_length_extension.py.
    return digests.md5(token + unsigned_uri)


@dataclass(frozen=True, slots=True)
class ImgixSource(KeyringSource):
    @property
    def expiry_required(self) -> bool:
        return False  # imgix's ``expires`` is optional

    def verify(self, request: VerifyRequest) -> Verdict:
        found = md5_query.read(request.uri, _lower_hex_digest)
        if isinstance(found, Reason):
            return deny(found)
        unsigned = found.unsigned
        matched = self.keyring.match(found.presented, lambda token: signature(token, unsigned))
        return md5_query.conclude(matched, found, request)

    def sign(self, request: SignRequest) -> Signed:
        grant = request.grant
        grant.refuse_unexpressible(NAME)
        if request.uri.get(SIGNATURE_PARAM):
            raise SchemeError(f"URL already carries '{SIGNATURE_PARAM}'")
        # imgix's libraries take an ``expires`` the URL carries as one more parameter:
        # signed as it is.
        carried = _carried_expiry(request.uri) is not None
        if carried and grant.expires is not None:
            raise SchemeError(f"URL already carries '{EXPIRES_PARAM}'")
        unsigned = md5_query.to_sign(request, None if carried else grant.expires)
        digest = signature(self.keyring.newest.secret, unsigned.encode())
        return md5_query.signed(request, unsigned, digest)


def _carried_expiry(uri: CanonicalURI) -> int | None:
    """The ``expires`` a URL to sign already carries; ``SchemeError`` for one that would
    never verify (duplicated, an encoded name, not unix seconds in their one spelling)."""
    found = [param for param in uri.params if param.name == EXPIRES_PARAM]
    if not found:
        return None
    expires = parse_epoch(found[0].value)
    if len(found) > 1 or found[0].raw_name != EXPIRES_PARAM or expires is None:
        raise SchemeError(f"URL carries an '{EXPIRES_PARAM}' that would never verify")
    return expires


class ImgixScheme(Scheme[NoSettings]):
    name = NAME

    def build(self, spec: SourceSpec[NoSettings]) -> ImgixSource:
        return ImgixSource(secret_keyring(spec.keys))


SCHEME: ImgixScheme = ImgixScheme()
