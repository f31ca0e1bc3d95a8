"""Scheme ``cloudfront``: ``Policy``/``Expires`` + ``Signature`` + ``Key-Pair-Id`` URLs.

The AWS CloudFront signed-URL format, as botocore's ``CloudFrontSigner``, the AWS SDKs
and ``aws cloudfront sign`` produce it: RSA PKCS#1 v1.5 or ECDSA P-256 signatures over
the policy JSON, SHA-1 unless ``Hash-Algorithm=SHA256``, base64 with ``+``→``-``,
``=``→``_``, ``/``→``~``. A canned policy is rebuilt byte for byte from the request; a
custom policy is verified over its decoded bytes before it is parsed.
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/private-content-signed-urls.html
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from sidecar.core.canonical import QueryParam
from sidecar.core.encodings import CLOUDFRONT, parse_epoch
from sidecar.core.urls import is_origin
from sidecar.core.verdict import Reason, Verdict, allow, deny
from sidecar.errors import SchemeError
from sidecar.schemes import cloudfront_policy as policies
from sidecar.schemes.base import (
    PUBLIC_KEY,
    KeyMaterial,
    NewKey,
    Setting,
    Signed,
    SignRequest,
    SourceSpec,
    VerifyRequest,
    refuse_unexpressible,
)
from sidecar.schemes.cloudfront_keys import new_key_pair
from sidecar.schemes.cloudfront_policy import PolicyStatement

POLICY, EXPIRES, SIGNATURE, KEY_PAIR_ID, HASH_ALGORITHM = (
    "Policy", "Expires", "Signature", "Key-Pair-Id", "Hash-Algorithm",
)  # fmt: skip
SIGNING_PARAMS = (POLICY, EXPIRES, SIGNATURE, KEY_PAIR_ID, HASH_ALGORITHM)
SIGNING_SET = frozenset(SIGNING_PARAMS)
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
    keys: tuple[_Key, ...]
    public_origin: str
    _by_id: dict[str, _Key] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {key.id: key for key in self.keys})

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(key.id for key in self.keys)

    def shared_secrets(self) -> tuple[tuple[str, bytes], ...]:
        return ()  # public keys only: nothing secret to show

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
        if SIGNATURE not in found or KEY_PAIR_ID not in found:
            return deny(Reason.MISSING)
        if (POLICY in found) == (EXPIRES in found):
            return deny(Reason.MISSING if POLICY not in found else Reason.MALFORMED)
        if any(param.raw_name != name for name, param in found.items()):
            return deny(Reason.MALFORMED)  # an encoded spelling of a signing parameter
        key = self._by_id.get(found[KEY_PAIR_ID].value)
        if key is None:
            return deny(Reason.UNKNOWN_KEY)
        algorithm = found[HASH_ALGORITHM].value if HASH_ALGORITHM in found else "SHA1"
        signature = b64decode(found[SIGNATURE].value)
        if algorithm not in _HASHES or signature is None:
            return deny(Reason.MALFORMED)
        signed = _Signed(key, signature, _HASHES[algorithm])
        resource = self.public_origin + uri.raw_path + ("?" + "&".join(own) if own else "")
        if EXPIRES in found:
            return _verify_canned(signed, resource, found[EXPIRES].value, request)
        return _verify_custom(signed, resource, found[POLICY].value, request)

    def sign(self, request: SignRequest) -> Signed:
        grant = request.grant
        refuse_unexpressible(NAME, grant, supported=_GRANT_PARTS)
        if grant.expires is None:
            raise SchemeError("cloudfront URLs need an expiry")
        target = self._sign_target(request)
        network = _parse_network(grant.client_ip) if grant.client_ip else None
        custom = grant.not_before is not None or network is not None or grant.resource is not None
        statement = PolicyStatement(
            grant.expires, grant.resource or target, grant.not_before, network
        )
        document = policies.build(statement)
        key = next((k for k in self.keys if k.private is not None), self.keys[0])
        # SHA-1 is what CloudFront and botocore use unless Hash-Algorithm says otherwise.
        signature = b64encode(key.sign(document, hashes.SHA1()))  # noqa: S303
        first = f"{POLICY}={b64encode(document)}" if custom else f"{EXPIRES}={grant.expires}"
        separator = "&" if "?" in target else "?"
        return Signed(f"{target}{separator}{first}&{SIGNATURE}={signature}&{KEY_PAIR_ID}={key.id}")

    def _sign_target(self, request: SignRequest) -> str:
        origin = request.url.origin
        if origin and origin != self.public_origin:
            raise SchemeError(
                f"URL must start with the source's public_origin {self.public_origin}"
            )
        if any(request.uri.get(name) for name in SIGNING_PARAMS):
            raise SchemeError("URL already carries CloudFront signing parameters")
        return self.public_origin + request.url.uri


@dataclass(frozen=True, slots=True)
class _Signed:
    """The presented signature, with the key it names and the hash it declares."""

    key: _Key
    signature: bytes
    algorithm: hashes.HashAlgorithm

    def holds_for(self, document: bytes) -> bool:
        return self.key.verify(self.signature, document, self.algorithm)


def _verify_canned(
    signed: _Signed, resource: str, expires_text: str, request: VerifyRequest
) -> Verdict:
    expires = parse_epoch(expires_text)
    if expires is None:
        return deny(Reason.MALFORMED)
    documents = [policies.canned(resource, expires)]
    if not resource.isascii():
        documents.append(policies.canned(resource, expires, ascii_only=False))
    if not any(signed.holds_for(document) for document in documents):
        return deny(Reason.INVALID)
    if request.now >= expires + request.clock_skew:
        return deny(Reason.EXPIRED)
    return allow(signed.key.id, expires, shareable=True)


def _verify_custom(
    signed: _Signed, resource: str, policy_text: str, request: VerifyRequest
) -> Verdict:
    document = b64decode(policy_text)
    if document is None:
        return deny(Reason.MALFORMED)
    if not signed.holds_for(document):
        return deny(Reason.INVALID)
    policy = policies.parse(document)  # only ever parsed once its signature holds
    if policy is None:
        return deny(Reason.MALFORMED)
    if policy.resource is not None and not policies.matches(policy.resource, resource):
        return deny(Reason.INVALID)
    if request.now >= policy.date_less_than + request.clock_skew:
        return deny(Reason.EXPIRED)
    if policy.date_greater_than is not None and (
        request.now + request.clock_skew < policy.date_greater_than
    ):
        return deny(Reason.NOT_YET_VALID)
    if policy.source_ip is not None and not _ip_in(request.client_ip, policy.source_ip):
        return deny(Reason.IP_MISMATCH)
    # An allow bound to the client's address must never be served to another client.
    return allow(signed.key.id, policy.date_less_than, shareable=policy.source_ip is None)


def _ip_in(client_ip: str | None, network: policies.IPNetwork) -> bool:
    if not client_ip:
        return False
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.version == network.version and address in network


def _parse_network(text: str) -> policies.IPNetwork:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise SchemeError(f"'{text}' is not an IP address or CIDR") from None


def _origin_problem(value: str) -> str | None:
    return None if is_origin(value) else "must be http(s)://host[:port]"


_GRANT_PARTS = frozenset({"not_before", "client_ip", "resource"})


@dataclass(frozen=True, slots=True)
class CloudFrontScheme:
    name: str = NAME
    default_deny_status: int = 403
    key_fields: frozenset[str] = frozenset({PUBLIC_KEY})
    settings: tuple[Setting, ...] = (Setting("public_origin", str, check=_origin_problem),)
    key_types: tuple[str, ...] = ("rsa", "ecdsa")
    key_ids_in_url: bool = True  # Key-Pair-Id
    expiring: bool = True

    def build(self, spec: SourceSpec) -> CloudFrontSource:
        problems: list[str] = []
        origin = spec.settings.get("public_origin")
        if not origin:
            problems.append("cloudfront needs public_origin (how signed Resource URLs begin)")
        loaded = [_load_key(key, problems) for key in spec.keys]
        if problems:
            raise SchemeError("; ".join(problems))
        return CloudFrontSource(tuple(key for key in loaded if key is not None), origin or "")

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


SCHEME = CloudFrontScheme()
