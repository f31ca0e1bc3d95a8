"""Scheme ``md5-token``: the Secure Source token.

``s = md5_hex(path + querystring + token)``, the last parameter; an optional signed
``expires``. The format, its one spelling, settings and answers: docs/schemes/md5-token.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sidecar.core import digests
from sidecar.core.encodings import parse_hex
from sidecar.core.verdict import Reason, Verdict, deny
from sidecar.errors import SchemeError
from sidecar.schemes import md5_query
from sidecar.schemes.base import Scheme, Signed, SignRequest, SourceSpec, VerifyRequest
from sidecar.schemes.keyring import KeyringSource, secret_keyring

NAME = "md5-token"
SIGNATURE_PARAM = md5_query.SIGNATURE_PARAM
EXPIRES_PARAM = md5_query.EXPIRES_PARAM
_DIGEST_SIZE: Final = 16


def _md5_hex(text: str) -> bytes | None:
    return parse_hex(text, _DIGEST_SIZE)


def signature(unsigned_uri: bytes, token: bytes) -> bytes:
    return digests.md5(unsigned_uri + token)


@dataclass(frozen=True, slots=True)
class Md5TokenSettings:
    require_expires: bool = False  # a URL without ``expires`` is ``missing``


@dataclass(frozen=True, slots=True)
class Md5TokenSource(KeyringSource):
    settings: Md5TokenSettings

    @property
    def expiry_required(self) -> bool:
        return self.settings.require_expires

    def verify(self, request: VerifyRequest) -> Verdict:
        found = md5_query.read(request.uri, _md5_hex)
        if isinstance(found, Reason):
            return deny(found)
        if found.expires_at is None and self.settings.require_expires:
            return deny(Reason.MISSING)
        return md5_query.conclude(
            self.keyring.match_md5(found.unsigned, found.presented), found, request
        )

    def sign(self, request: SignRequest) -> Signed:
        grant = request.grant
        grant.refuse_unexpressible(NAME)
        if grant.expires is None and self.settings.require_expires:
            raise SchemeError("this source requires an expiry (require_expires)")
        if request.uri.get(SIGNATURE_PARAM) or request.uri.get(EXPIRES_PARAM):
            raise SchemeError(f"URL already carries '{SIGNATURE_PARAM}' or '{EXPIRES_PARAM}'")
        unsigned = md5_query.to_sign(request, grant.expires)
        digest = signature(unsigned.encode(), self.keyring.newest.secret)
        return md5_query.signed(request, unsigned, digest)


class Md5TokenScheme(Scheme[Md5TokenSettings]):
    name = NAME
    settings_type = Md5TokenSettings
    default_deny_status = 401

    def build(self, spec: SourceSpec[Md5TokenSettings]) -> Md5TokenSource:
        return Md5TokenSource(secret_keyring(spec.keys), spec.settings)


SCHEME: Md5TokenScheme = Md5TokenScheme()
