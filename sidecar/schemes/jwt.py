"""Scheme ``jwt``: a compact JWS (RFC 7515, 7519) in a query parameter or a cookie, whose
scope claim names the path (a prefix, or a pattern) it opens.

HS256/384/512, RS256/384/512, PS256/384/512, ES256, ES384 and EdDSA (Ed25519), verified
with pyca/cryptography. The key is chosen by ``kid`` among the source's keys (configured,
from ``jwks_file``, or fetched from ``jwks_url`` by the runtime); its algorithm is the
key's, never the token's. The format, the claims and every refusal: docs/schemes/jwt.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import ec

from sidecar.core.addresses import client_within
from sidecar.core.cookies import grant_cookies, set_cookie
from sidecar.core.verdict import Reason, Verdict, allow, deny
from sidecar.errors import SchemeError
from sidecar.schemes import grant_ids
from sidecar.schemes import jwt_claims as claims
from sidecar.schemes import jwt_tokens as tokens
from sidecar.schemes.base import (
    JWK,
    PUBLIC_KEY,
    SECRET,
    NewKey,
    Scheme,
    Signed,
    SignRequest,
    SourceKey,
    SourceSpec,
    VerifyRequest,
)
from sidecar.schemes.jwt_claims import ScopeMode
from sidecar.schemes.jwt_config import KEY_TYPES, JwtSettings, build_keys, new_jwt_key
from sidecar.schemes.jwt_keys import HMAC, JwtKey
from sidecar.schemes.signature_cache import VerifiedSignatures

NAME: Final = "jwt"


class RemoteKeys:
    """The keys a source's ``jwks_url`` last served, set whole by the runtime's fetcher (one
    reference assignment), and how the source asks it for a fresh set: ``on_unknown_kid``
    is the fetcher's (pure code calls it, the fetcher decides whether and when to fetch)."""

    __slots__ = ("by_id", "on_unknown_kid")

    def __init__(self) -> None:
        self.by_id: dict[str, JwtKey] = {}
        self.on_unknown_kid: Callable[[], None] | None = None

    def unknown_kid(self) -> None:
        if self.on_unknown_kid is not None:
            self.on_unknown_kid()


@dataclass(frozen=True, slots=True)
class JwtSource:
    keys: tuple[JwtKey, ...]  # configured and jwks_file keys, newest first
    settings: JwtSettings
    path_prefix: str
    remote: RemoteKeys = field(default_factory=RemoteKeys, compare=False)
    _by_id: dict[str, JwtKey] = field(init=False, repr=False, compare=False)
    _verified: VerifiedSignatures = field(init=False, repr=False, compare=False)
    _scope: str = field(init=False, repr=False, compare=False)
    _mode: ScopeMode = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {key.id: key for key in self.keys})
        object.__setattr__(self, "_verified", VerifiedSignatures())
        object.__setattr__(self, "_scope", self.path_prefix.rstrip("/") + "/")
        object.__setattr__(self, "_mode", ScopeMode(self.settings.scope))

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(key.id for key in self.keys)

    @property
    def expiry_required(self) -> bool:
        return True  # exp is required

    def key_material(self) -> tuple[SourceKey, ...]:
        return tuple(key.shown() for key in self.keys)

    # --- verify ---------------------------------------------------------------------------

    def verify(self, request: VerifyRequest) -> Verdict:
        settings = self.settings
        name = settings.token_param
        found = [param for param in request.uri.params if param.name == name]
        if len(found) > 1:
            return deny(Reason.NON_CANONICAL)
        if found:
            if found[0].raw_name != name:
                return deny(Reason.MALFORMED)  # an encoded spelling of the parameter
            return self._verify_token(found[0].value, request, from_cookie=False)
        if not settings.accept_cookies:
            return deny(Reason.MISSING)
        cookies = grant_cookies(request.cookies, (settings.token_cookie,))
        if isinstance(cookies, Reason):
            return deny(cookies)
        token = cookies.get(settings.token_cookie)
        if token is None:
            return deny(Reason.MISSING)
        return self._verify_token(token, request, from_cookie=True)

    def _verify_token(self, token: str, request: VerifyRequest, *, from_cookie: bool) -> Verdict:
        jws = tokens.read(token)
        if isinstance(jws, Reason):
            return deny(jws)
        key = self._key(jws.key_id)
        if key is None:
            return deny(Reason.UNKNOWN_KEY)
        # The key's algorithm, never the token's choice: none, HS256 against an RSA key...
        if jws.algorithm != key.algorithm.name:
            return deny(Reason.INVALID)
        if len(jws.signature) != key.signature_size():
            return deny(Reason.MALFORMED)  # exact length first: one spelling
        if not self._holds(key, jws):
            return deny(Reason.INVALID)
        return self._granted(key, jws, request, from_cookie)

    def _key(self, key_id: str | None) -> JwtKey | None:
        remote = self.remote.by_id
        if key_id is None:  # only a source with one key in all may go without a kid
            if len(self.keys) + len(remote) == 1:
                return self.keys[0] if self.keys else next(iter(remote.values()))
            return None
        key = self._by_id.get(key_id) or remote.get(key_id)
        if key is None:
            self.remote.unknown_kid()
        return key

    def _holds(self, key: JwtKey, jws: tokens.Jws) -> bool:
        """The signature holds: an HMAC is recomputed every time (it costs a microsecond);
        a public-key operation runs once per (key, token) and is remembered."""
        if key.algorithm.family == HMAC:
            return key.verify(jws.signing_input, jws.signature)
        entry = (key, jws.signing_input, jws.signature)
        if entry in self._verified:
            return True
        if not key.verify(jws.signing_input, jws.signature):
            return False
        self._verified.add(entry)
        return True

    def _granted(
        self, key: JwtKey, jws: tokens.Jws, request: VerifyRequest, from_cookie: bool
    ) -> Verdict:
        settings, grant = self.settings, jws.claims
        expires = claims.numeric_date(grant.get("exp"))
        not_before = grant.get("nbf")
        scope = grant.get(settings.scope_claim)
        if expires is None or (not_before is not None and claims.numeric_date(not_before) is None):
            return deny(Reason.MALFORMED)
        if not isinstance(scope, str) or claims.scope_problem(scope, self._mode, self._scope):
            return deny(Reason.INVALID)
        if settings.issuer and grant.get("iss") != settings.issuer:
            return deny(Reason.INVALID)
        if not claims.audience_holds(grant.get("aud"), settings.audience):
            return deny(Reason.INVALID)
        if not claims.opens(scope, self._mode, request.uri.path):
            return deny(Reason.INVALID)
        if request.now >= expires + request.clock_skew:
            return deny(Reason.EXPIRED)
        if not_before is not None and request.now + request.clock_skew < not_before:
            return deny(Reason.NOT_YET_VALID)
        bound = grant.get("ip")
        if bound is not None:
            allowed = claims.network(bound)
            if allowed is None:
                return deny(Reason.MALFORMED)
            if not client_within(request.client_ip, allowed):
                return deny(Reason.IP_MISMATCH)
        # The auth cache's key holds neither the client's address nor its cookies.
        shareable = bound is None and not from_cookie
        return allow(key.id, expires, shareable=shareable, grant=_identity(key, jws.signature))

    # --- sign -----------------------------------------------------------------------------

    def sign(self, request: SignRequest) -> Signed:
        grant = request.grant
        supported = {"not_before", "client_ip", "prefix", "resource"}
        if self.settings.accept_cookies:
            supported.add("cookies")
        grant.refuse_unexpressible(NAME, frozenset(supported))
        if grant.expires is None or claims.numeric_date(grant.expires) is None:
            raise SchemeError("jwt tokens need an expiry (unix seconds)")
        if request.uri.get(self.settings.token_param) is not None:
            raise SchemeError(f"URL already carries a '{self.settings.token_param}' parameter")
        key = next((key for key in self.keys if key.can_sign()), None)
        if key is None:
            raise SchemeError("no key of this source can sign (a secret or private_key_file)")
        token = tokens.encode(
            {"alg": key.algorithm.name, "kid": key.id, "typ": "JWT"},
            self._claims(request),
            key.sign,
        )
        url = request.url.origin + request.url.uri
        if grant.cookies:
            scope = grant.prefix or self._scope
            return Signed(url, (set_cookie(self.settings.token_cookie, token, path=scope,
                                           expires=grant.expires),))  # fmt: skip
        separator = "&" if "?" in url else "?"
        return Signed(f"{url}{separator}{self.settings.token_param}={token}")

    def _claims(self, request: SignRequest) -> dict[str, Any]:
        grant, settings = request.grant, self.settings
        mode = self._mode
        if grant.cookies and mode is not ScopeMode.PREFIX:
            raise SchemeError('a cookie grant needs scope = "prefix"')
        # A cookie opens a folder: the grant's prefix, else the source's.
        default = self._scope if grant.cookies else request.uri.path
        scope = grant.resource or grant.prefix or default
        if grant.prefix is not None and mode is not ScopeMode.PREFIX:
            raise SchemeError('a prefix grant needs scope = "prefix"')
        if grant.resource is not None and mode is not ScopeMode.GLOB:
            raise SchemeError('a pattern (resource) grant needs scope = "glob"')
        problem = claims.scope_problem(scope, mode, self._scope)
        if problem is None and not claims.opens(scope, mode, request.uri.path):
            problem = "the scope does not open the URL being signed"
        if problem is not None:
            raise SchemeError(problem)
        made: dict[str, Any] = {settings.scope_claim: scope, "exp": grant.expires}
        if grant.not_before is not None:
            made["nbf"] = grant.not_before
        if grant.client_ip is not None:
            allowed = claims.network(grant.client_ip)
            if allowed is None:
                raise SchemeError(f"'{grant.client_ip}' is not an IP address or CIDR")
            made["ip"] = grant.client_ip
        if settings.issuer:
            made["iss"] = settings.issuer
        if settings.audience:
            made["aud"] = settings.audience
        return made


class JwtScheme(Scheme[JwtSettings]):
    name = NAME
    settings_type = JwtSettings
    default_deny_status = 401
    key_fields = frozenset({SECRET, PUBLIC_KEY, JWK})
    key_types = KEY_TYPES

    def build(self, spec: SourceSpec[JwtSettings]) -> JwtSource:
        return JwtSource(build_keys(spec.keys), spec.settings, spec.path_prefix)

    def fetches_keys(self, settings: JwtSettings) -> bool:
        return bool(settings.jwks_url)

    def new_key(self, key_type: str) -> NewKey:
        return new_jwt_key(key_type)


def _identity(key: JwtKey, signature: bytes) -> bytes:
    """The grant's identity: the signature, an ECDSA one in its low-``s`` form."""
    if isinstance(key.public, ec.EllipticCurvePublicKey):
        return grant_ids.ecdsa_raw(signature, key.public.curve)
    return signature


SCHEME: JwtScheme = JwtScheme()
