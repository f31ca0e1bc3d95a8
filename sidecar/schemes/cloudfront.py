"""Scheme ``cloudfront``: ``Policy``/``Expires`` + ``Signature`` + ``Key-Pair-Id`` URLs and
the ``CloudFront-*`` signed cookies, in the AWS CloudFront format.

RSA PKCS#1 v1.5 or ECDSA P-256 signatures over the policy JSON (a canned policy rebuilt
byte for byte; a custom one verified over its decoded bytes before it is parsed). The
format, the reference signer (botocore's ``CloudFrontSigner``) and answers:
docs/schemes/cloudfront.md and docs/cookies.md.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from sidecar.core.addresses import client_within
from sidecar.core.canonical import QueryParam
from sidecar.core.cookies import grant_cookies, set_cookie
from sidecar.core.encodings import CLOUDFRONT, parse_epoch
from sidecar.core.verdict import Reason, Verdict, allow, deny
from sidecar.errors import SchemeError
from sidecar.schemes import cloudfront_policy as policies
from sidecar.schemes import grant_ids
from sidecar.schemes.base import (
    PUBLIC_KEY,
    Grant,
    KeyKind,
    KeyMaterial,
    NewKey,
    Scheme,
    Signed,
    SignRequest,
    SourceKey,
    SourceSpec,
    VerifyRequest,
)
from sidecar.schemes.cloudfront_keys import new_key_pair
from sidecar.schemes.cloudfront_policy import PolicyStatement
from sidecar.schemes.settings import OriginSettings
from sidecar.schemes.signature_cache import VerifiedSignatures

POLICY, EXPIRES, SIGNATURE, KEY_PAIR_ID, HASH_ALGORITHM = (
    "Policy", "Expires", "Signature", "Key-Pair-Id", "Hash-Algorithm",
)  # fmt: skip
SIGNING_PARAMS = (POLICY, EXPIRES, SIGNATURE, KEY_PAIR_ID, HASH_ALGORITHM)
SIGNING_SET = frozenset(SIGNING_PARAMS)
# The cookie carrying each signing parameter (AWS: the names are case-sensitive).
COOKIE_NAMES = {f"CloudFront-{name}": name for name in SIGNING_PARAMS}
# A cookie grant's prefix: a plain path a Set-Cookie Path can carry (RFC 6265 cookie-octet).
_COOKIE_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]+")
# Hash and padding objects are immutable: made once, not per request.
_HASHES: dict[str, hashes.HashAlgorithm] = {"SHA1": hashes.SHA1(), "SHA256": hashes.SHA256()}  # noqa: S303
_PKCS1 = padding.PKCS1v15()
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


NAME = "cloudfront"
b64encode = CLOUDFRONT.encode
b64decode = CLOUDFRONT.decode  # strict: exact padding, zero unused bits


@dataclass(frozen=True, slots=True)
class _Key:
    id: str
    public: PublicKey = field(repr=False)
    private: PrivateKey | None = field(default=None, repr=False)

    def verify(self, signature: bytes, message: bytes, algorithm: hashes.HashAlgorithm) -> bool:
        try:
            if isinstance(self.public, rsa.RSAPublicKey):
                # PKCS#1 v1.5 signatures are exactly the modulus length; no leniency.
                if len(signature) != (self.public.key_size + 7) // 8:
                    return False
                self.public.verify(signature, message, _PKCS1, algorithm)
            else:
                self.public.verify(signature, message, ec.ECDSA(algorithm))
        except (InvalidSignature, ValueError):
            return False
        return True

    def sign(self, message: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
        if isinstance(self.private, rsa.RSAPrivateKey):
            return self.private.sign(message, padding.PKCS1v15(), algorithm)
        if isinstance(self.private, ec.EllipticCurvePrivateKey):
            return self.private.sign(message, ec.ECDSA(algorithm))
        raise SchemeError(f"key '{self.id}' has no private_key_file to sign with")


@dataclass(frozen=True, slots=True)
class CloudFrontSource:
    key_pairs: tuple[_Key, ...]  # newest first
    settings: OriginSettings
    path_prefix: str = "/"
    _by_id: dict[str, _Key] = field(init=False, repr=False, compare=False)
    _verified: VerifiedSignatures = field(init=False, repr=False, compare=False)
    # What a policy's Resource must stay within: None for a source at "/", which holds
    # every URL no other source holds (docs/schemes/cloudfront.md, "One source's grants").
    _scope: str | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {key.id: key for key in self.key_pairs})
        object.__setattr__(self, "_verified", VerifiedSignatures())
        prefix = self.path_prefix.rstrip("/") + "/"
        scope = None if prefix == "/" else self.settings.public_origin + prefix
        object.__setattr__(self, "_scope", scope)

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(key.id for key in self.key_pairs)

    @property
    def expiry_required(self) -> bool:
        return True

    def key_material(self) -> tuple[SourceKey, ...]:
        # Public keys only: nothing secret to show.
        der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        return tuple(SourceKey(key.id, KeyKind.PUBLIC_KEY, key.public.public_bytes(der, spki))
                     for key in self.key_pairs)  # fmt: skip

    def verify(self, request: VerifyRequest) -> Verdict:
        uri = request.uri
        # One pass: the signing parameters (each at most once), and the client's own
        # parameters, in order, which with the origin and raw path form the Resource.
        found: dict[str, QueryParam] = {}
        own: list[str] = []
        pairs = uri.query.split("&") if uri.query is not None else ()
        for pair, param in zip(pairs, uri.params, strict=True):
            if param.name in SIGNING_SET:
                if param.name in found:
                    return deny(Reason.NON_CANONICAL)
                found[param.name] = param
            else:
                own.append(pair)
        resource = self.settings.public_origin + uri.raw_path + ("?" + "&".join(own) if own else "")
        if not found and self.settings.accept_cookies:
            return self._verify_cookies(resource, request)
        values = {name: param.value for name, param in found.items()}
        problem = _incomplete(values)
        if problem is not None:
            return problem
        if any(param.raw_name != name for name, param in found.items()):
            return deny(Reason.MALFORMED)  # an encoded spelling of a signing parameter
        return self._verify_grant(values, resource, request)

    def _verify_cookies(self, resource: str, request: VerifyRequest) -> Verdict:
        """The grant carried by cookies: only reached when the URL carries no signing
        parameter at all. Whatever it grants is never shared through the auth cache."""
        cookies = grant_cookies(request.cookies, COOKIE_NAMES)
        if isinstance(cookies, Reason):
            return deny(cookies)
        values = {COOKIE_NAMES[name]: value for name, value in cookies.items()}
        problem = _incomplete(values)
        if problem is not None:
            return problem
        verdict = self._verify_grant(values, resource, request)
        return verdict._replace(shareable=False) if verdict.valid else verdict

    def _verify_grant(
        self, values: dict[str, str], resource: str, request: VerifyRequest
    ) -> Verdict:
        key = self._by_id.get(values[KEY_PAIR_ID])
        if key is None:
            return deny(Reason.UNKNOWN_KEY)
        algorithm = values.get(HASH_ALGORITHM, "SHA1")
        signature = b64decode(values[SIGNATURE])
        if algorithm not in _HASHES or signature is None:
            return deny(Reason.MALFORMED)
        signed = _Signed(key, signature, _HASHES[algorithm], self._verified)
        if EXPIRES in values:
            return _verify_canned(signed, resource, values[EXPIRES], request)
        return _verify_custom(signed, resource, values[POLICY], request, self._scope)

    def sign(self, request: SignRequest) -> Signed:
        grant = request.grant
        supported = _COOKIE_GRANT_PARTS if grant.cookies else _GRANT_PARTS
        grant.refuse_unexpressible(NAME, supported)
        if grant.expires is None:
            raise SchemeError("cloudfront URLs need an expiry")
        target = self._sign_target(request)
        if grant.cookies:
            return self._sign_cookies(request, target)
        network = _parse_network(grant.client_ip) if grant.client_ip else None
        custom = grant.not_before is not None or network is not None or grant.resource is not None
        statement = PolicyStatement(
            grant.expires, grant.resource or target, grant.not_before, network
        )
        key, document, signature = self._signature(statement)
        first = f"{POLICY}={b64encode(document)}" if custom else f"{EXPIRES}={grant.expires}"
        separator = "&" if "?" in target else "?"
        return Signed(f"{target}{separator}{first}&{SIGNATURE}={signature}&{KEY_PAIR_ID}={key.id}")

    def _signature(self, statement: PolicyStatement) -> tuple[_Key, bytes, str]:
        document = policies.build(statement)
        key = next((k for k in self.key_pairs if k.private is not None), self.key_pairs[0])
        # SHA-1 is what CloudFront and botocore use unless Hash-Algorithm says otherwise.
        return key, document, b64encode(key.sign(document, hashes.SHA1()))  # noqa: S303

    def _sign_cookies(self, request: SignRequest, target: str) -> Signed:
        """The unsigned URL, and the three cookies granting every URL under the prefix
        (the grant's, else the source's): a custom policy with Resource
        ``public_origin + prefix + "*"``, the cookies scoped to ``Path=prefix``."""
        grant = request.grant
        prefix = self._cookie_prefix(grant, request.url.uri)
        network = _parse_network(grant.client_ip) if grant.client_ip else None
        statement = PolicyStatement(
            grant.expires or 0,
            self.settings.public_origin + prefix + "*",
            grant.not_before,
            network,
        )
        key, document, signature = self._signature(statement)
        values = ((POLICY, b64encode(document)), (SIGNATURE, signature), (KEY_PAIR_ID, key.id))
        expires = grant.expires or 0
        return Signed(target, tuple(
            set_cookie(f"CloudFront-{name}", value, path=prefix, expires=expires)
            for name, value in values
        ))  # fmt: skip

    def _cookie_prefix(self, grant: Grant, uri: str) -> str:
        """The cookie grant's prefix: a path under the source's own prefix, ending at a
        segment boundary (``/books*`` would also open ``/books-other/``), without
        CloudFront wildcards, and holding the URL being signed."""
        scope = self.path_prefix.rstrip("/") + "/"
        prefix = grant.prefix or scope
        if not prefix.endswith("/"):
            raise SchemeError("cookie prefix must end at a path segment boundary ('/')")
        if not prefix.startswith(scope):
            raise SchemeError(f"cookie prefix must lie under the source's path_prefix {scope}")
        if "*" in prefix or "?" in prefix or not _COOKIE_VALUE.fullmatch(prefix):
            raise SchemeError("cookie prefix must be a plain path (no wildcards, no ';')")
        if not uri.startswith(prefix):
            raise SchemeError(f"URL is not under the cookie prefix {prefix}")
        return prefix

    def _sign_target(self, request: SignRequest) -> str:
        if any(request.uri.get(name) for name in SIGNING_PARAMS):
            raise SchemeError("URL already carries CloudFront signing parameters")
        return self.settings.absolute(request.url)


class _Signed(NamedTuple):
    """The presented signature, with the key it names and the hash it declares (a
    NamedTuple: made on every request, and a frozen dataclass costs a microsecond more)."""

    key: _Key
    signature: bytes
    algorithm: hashes.HashAlgorithm
    verified: VerifiedSignatures

    def grant(self) -> bytes:
        """The verified signature's identity (an ECDSA one in its low-``s`` form)."""
        public = self.key.public
        if isinstance(public, ec.EllipticCurvePublicKey):
            return grant_ids.ecdsa_der(self.signature, public.curve)
        return self.signature

    def holds_for(self, document: bytes) -> bool:
        """Whether the signature holds for ``document``: the public-key operation runs once
        per (key, hash, document, signature); what the document grants (expiry, address,
        resource) is checked by the caller on every request."""
        entry = (self.key.id, self.algorithm.name, document, self.signature)
        if entry in self.verified:
            return True
        if not self.key.verify(self.signature, document, self.algorithm):
            return False
        self.verified.add(entry)
        return True


def _verify_canned(
    signed: _Signed, resource: str, expires_text: str, request: VerifyRequest
) -> Verdict:
    expires = parse_epoch(expires_text)
    if expires is None:
        return deny(Reason.MALFORMED)
    holds = signed.holds_for(policies.canned(resource, expires))
    if not holds and not resource.isascii():  # a signer that wrote the resource unescaped
        holds = signed.holds_for(policies.canned(resource, expires, ascii_only=False))
    if not holds:
        return deny(Reason.INVALID)
    if request.now >= expires + request.clock_skew:
        return deny(Reason.EXPIRED)
    return allow(signed.key.id, expires, shareable=True, grant=signed.grant())


def _verify_custom(
    signed: _Signed, resource: str, policy_text: str, request: VerifyRequest, scope: str | None
) -> Verdict:
    document = b64decode(policy_text)
    if document is None:
        return deny(Reason.MALFORMED)
    if not signed.holds_for(document):
        return deny(Reason.INVALID)
    policy = policies.parse(document)  # only ever parsed once its signature holds
    if policy is None:
        return deny(Reason.MALFORMED)
    pattern = policy.resource
    if pattern is not None:
        pattern = policies.fixed_scheme(pattern, resource)
        if not policies.matches(pattern, resource):
            return deny(Reason.INVALID)
    # Held to its source: a key the source shares must not let a policy signed for
    # another source open this one's files.
    if scope is not None and not policies.within(pattern, scope):
        return deny(Reason.INVALID)
    if request.now >= policy.date_less_than + request.clock_skew:
        return deny(Reason.EXPIRED)
    if policy.date_greater_than is not None and (
        request.now + request.clock_skew < policy.date_greater_than
    ):
        return deny(Reason.NOT_YET_VALID)
    if policy.source_ip is not None and not client_within(request.client_ip, policy.source_ip):
        return deny(Reason.IP_MISMATCH)
    # An allow bound to the client's address must never be served to another client.
    return allow(
        signed.key.id,
        policy.date_less_than,
        shareable=policy.source_ip is None,
        grant=signed.grant(),
    )


def _parse_network(text: str) -> policies.IPNetwork:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise SchemeError(f"'{text}' is not an IP address or CIDR") from None


_GRANT_PARTS = frozenset({"not_before", "client_ip", "resource"})
# A cookie grant's scope is its prefix; a free Resource pattern could end mid-segment.
_COOKIE_GRANT_PARTS = frozenset({"not_before", "client_ip", "prefix", "cookies"})


def _incomplete(values: dict[str, str]) -> Verdict | None:
    """``missing`` without a signature, key id, or policy/expiry; ``malformed`` with both."""
    if SIGNATURE not in values or KEY_PAIR_ID not in values:
        return deny(Reason.MISSING)
    if (POLICY in values) == (EXPIRES in values):
        return deny(Reason.MISSING if POLICY not in values else Reason.MALFORMED)
    return None


class CloudFrontScheme(Scheme[OriginSettings]):
    name = NAME
    settings_type = OriginSettings
    key_fields = frozenset({PUBLIC_KEY})
    key_types = ("rsa", "ecdsa")
    key_ids_in_url = True  # Key-Pair-Id

    def build(self, spec: SourceSpec[OriginSettings]) -> CloudFrontSource:
        problems: list[str] = []
        loaded = [_load_key(key, problems) for key in spec.keys]
        if problems:
            raise SchemeError("; ".join(problems))
        return CloudFrontSource(
            tuple(key for key in loaded if key is not None), spec.settings, spec.path_prefix
        )

    def new_key(self, key_type: str) -> NewKey:
        private, public = new_key_pair(key_type)
        return NewKey(private_pem=private, public_pem=public)


def _load_key(material: KeyMaterial, problems: list[str]) -> _Key | None:
    where = f"key '{material.id}'"
    try:
        public = serialization.load_pem_public_key(material.public_key_pem or b"")
    except (ValueError, TypeError):
        problems.append(f"{where}: public_key_file is not a PEM public key")
        return None
    if isinstance(public, rsa.RSAPublicKey):
        if public.key_size < 2048:
            problems.append(f"{where}: RSA keys must have at least 2048 bits")
    elif not (isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1"):
        problems.append(f"{where}: only RSA and ECDSA P-256 keys are supported")
        return None
    private = _load_private(material, public, where, problems)
    return _Key(material.id, public, private)


def _load_private(
    material: KeyMaterial, public: PublicKey, where: str, problems: list[str]
) -> PrivateKey | None:
    if material.private_key_pem is None:
        return None
    try:
        private = serialization.load_pem_private_key(material.private_key_pem, password=None)
    except (ValueError, TypeError):
        problems.append(f"{where}: private_key_file is not an unencrypted PEM private key")
        return None
    if not isinstance(private, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        problems.append(f"{where}: private key is neither RSA nor ECDSA")
        return None
    if private.public_key().public_numbers() != public.public_numbers():
        problems.append(f"{where}: private_key_file does not match public_key_file")
        return None
    return private


SCHEME: CloudFrontScheme = CloudFrontScheme()
