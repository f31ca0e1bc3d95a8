"""JWS keys: each pinned to one algorithm (RFC 7518 §3), built from a configured secret or
PEM key, or from a JWK of a JWKS (RFC 7517), and verifying with pyca/cryptography.

A key verifies only its own algorithm: the token's ``alg`` must equal it, so a token can
neither choose ``none`` nor turn an RSA public key into an HMAC secret. A JWK must carry
``alg`` and ``kid``; a JWKS holds public keys only (a shared secret or a private key in a
set fetched over the network is refused), at most 64 KB of it.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from sidecar.core import digests
from sidecar.core.encodings import URLSAFE_NOPAD
from sidecar.schemes.base import KeyKind, KeyMaterial, SourceKey
from sidecar.schemes.jwt_tokens import json_object

MAX_JWKS_BYTES: Final = 65536
MIN_RSA_BITS: Final = 2048
HMAC, RSA, PSS, ECDSA, EDDSA = "HMAC", "RSA", "PSS", "ECDSA", "EdDSA"
# Members of a JWK that only a private or secret key has (RFC 7518 §6.2.2, §6.3.2, §6.4).
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_KID_CHARACTERS: Final = frozenset(chr(code) for code in range(0x21, 0x7F))


class Algorithm(NamedTuple):
    name: str
    family: str
    hash_name: str  # "" for EdDSA
    curve: str = ""  # the JWK "crv" (ECDSA, EdDSA)
    size: int = 0  # signature bytes where fixed (HMAC, ECDSA, EdDSA); RSA: the modulus

    def hash(self) -> hashes.HashAlgorithm:
        return _HASHES[self.hash_name]


_HASHES: Final[dict[str, hashes.HashAlgorithm]] = {
    "SHA256": hashes.SHA256(), "SHA384": hashes.SHA384(), "SHA512": hashes.SHA512(),
}  # fmt: skip
ALGORITHMS: Final[dict[str, Algorithm]] = {
    "HS256": Algorithm("HS256", HMAC, "SHA256", size=32),
    "HS384": Algorithm("HS384", HMAC, "SHA384", size=48),
    "HS512": Algorithm("HS512", HMAC, "SHA512", size=64),
    "RS256": Algorithm("RS256", RSA, "SHA256"),
    "RS384": Algorithm("RS384", RSA, "SHA384"),
    "RS512": Algorithm("RS512", RSA, "SHA512"),
    "PS256": Algorithm("PS256", PSS, "SHA256"),
    "PS384": Algorithm("PS384", PSS, "SHA384"),
    "PS512": Algorithm("PS512", PSS, "SHA512"),
    "ES256": Algorithm("ES256", ECDSA, "SHA256", "P-256", 64),
    "ES384": Algorithm("ES384", ECDSA, "SHA384", "P-384", 96),
    "EdDSA": Algorithm("EdDSA", EDDSA, "", "Ed25519", 64),
}
_CURVES: Final[dict[str, ec.EllipticCurve]] = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1()}
_PKCS1: Final = padding.PKCS1v15()
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def _pss(algorithm: Algorithm) -> padding.PSS:
    # RFC 7518 §3.5: MGF1 with the same hash, a salt as long as the hash's output.
    chosen = algorithm.hash()
    return padding.PSS(mgf=padding.MGF1(chosen), salt_length=chosen.digest_size)


@dataclass(frozen=True, slots=True, eq=False)
class JwtKey:
    """One key and the one algorithm it verifies. Compared by identity: a remembered
    signature names the key object that verified it, so a replaced key of the same
    ``kid`` never inherits another key's verifications."""

    id: str
    algorithm: Algorithm
    secret: bytes | None = field(default=None, repr=False)
    public: PublicKey | None = field(default=None, repr=False)
    private: PrivateKey | None = field(default=None, repr=False)

    def verify(self, signing_input: bytes, signature: bytes) -> bool:
        algorithm = self.algorithm
        if algorithm.family == HMAC:
            expected = digests.hmac_digest(self.secret or b"", signing_input, algorithm.hash_name)
            return hmac.compare_digest(expected, signature)
        try:
            return self._verify_public(signing_input, signature)
        except (InvalidSignature, ValueError):
            return False

    def _verify_public(self, signing_input: bytes, signature: bytes) -> bool:
        algorithm, public = self.algorithm, self.public
        if isinstance(public, rsa.RSAPublicKey):
            # Exactly the modulus length: no shorter or zero-padded spellings.
            if len(signature) != (public.key_size + 7) // 8:
                return False
            scheme = _PKCS1 if algorithm.family == RSA else _pss(algorithm)
            public.verify(signature, signing_input, scheme, algorithm.hash())
        elif isinstance(public, ec.EllipticCurvePublicKey):
            if len(signature) != algorithm.size:
                return False
            half = algorithm.size // 2
            r, s = int.from_bytes(signature[:half]), int.from_bytes(signature[half:])
            der = encode_dss_signature(r, s)
            public.verify(der, signing_input, ec.ECDSA(algorithm.hash()))
        elif isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(signature, signing_input)
        else:
            return False
        return True

    def signature_size(self) -> int:
        """The one length of this key's signatures, in bytes."""
        if isinstance(self.public, rsa.RSAPublicKey):
            return (self.public.key_size + 7) // 8
        return self.algorithm.size

    def can_sign(self) -> bool:
        return self.secret is not None or self.private is not None

    def sign(self, signing_input: bytes) -> bytes:
        algorithm, private = self.algorithm, self.private
        if algorithm.family == HMAC:
            return digests.hmac_digest(self.secret or b"", signing_input, algorithm.hash_name)
        if isinstance(private, rsa.RSAPrivateKey):
            scheme = _PKCS1 if algorithm.family == RSA else _pss(algorithm)
            return private.sign(signing_input, scheme, algorithm.hash())
        if isinstance(private, ec.EllipticCurvePrivateKey):
            r, s = decode_dss_signature(private.sign(signing_input, ec.ECDSA(algorithm.hash())))
            half = algorithm.size // 2
            return r.to_bytes(half) + s.to_bytes(half)
        if isinstance(private, ed25519.Ed25519PrivateKey):
            return private.sign(signing_input)
        raise ValueError(f"key '{self.id}' holds no private key")

    def shown(self) -> SourceKey:
        """A shared secret as configured, or the public key as DER SubjectPublicKeyInfo."""
        if self.public is None:
            return SourceKey(self.id, KeyKind.SHARED_SECRET, self.secret or b"")
        der = self.public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return SourceKey(self.id, KeyKind.PUBLIC_KEY, der)


def public_key_problem(algorithm: Algorithm, public: object) -> str | None:
    """What keeps ``public`` from verifying ``algorithm`` (None: nothing)."""
    if algorithm.family in (RSA, PSS):
        if not isinstance(public, rsa.RSAPublicKey):
            return f"{algorithm.name} needs an RSA key"
        if public.key_size < MIN_RSA_BITS:
            return f"RSA keys must have at least {MIN_RSA_BITS} bits"
        return None
    if algorithm.family == ECDSA:
        curve = _CURVES[algorithm.curve]
        if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != curve.name:
            return f"{algorithm.name} needs an EC {algorithm.curve} key"
        return None
    if not isinstance(public, ed25519.Ed25519PublicKey):
        return f"{algorithm.name} needs an Ed25519 key"
    return None


# --- JWKS ---------------------------------------------------------------------------------


class KeySet(NamedTuple):
    """The usable keys of a JWKS, and what was wrong with each key left out."""

    keys: tuple[JwtKey, ...]
    skipped: tuple[str, ...]


def parse_jwks(data: bytes) -> KeySet | str:
    """The usable keys of a JWKS, or what keeps the whole set from being used (too big,
    not a JWKS, no usable key). A kid given twice is left out, both times."""
    if len(data) > MAX_JWKS_BYTES:
        return f"a JWKS over {MAX_JWKS_BYTES // 1024} KB is refused"
    document = json_object(data)
    entries = document.get("keys") if document is not None else None
    if not isinstance(entries, list):
        return "not a JWKS (a JSON object with a 'keys' list, no member twice)"
    keys: list[JwtKey] = []
    skipped: list[str] = []
    for index, entry in enumerate(entries):
        key = parse_jwk(entry)
        if isinstance(key, str):
            skipped.append(f"key {index}: {key}")
        else:
            keys.append(key)
    ids = [key.id for key in keys]
    twice = {key_id for key_id in ids if ids.count(key_id) > 1}
    skipped += [f"kid given twice: {key_id}" for key_id in sorted(twice)]
    usable = tuple(key for key in keys if key.id not in twice)
    if not usable:
        return "no usable key: " + ("; ".join(skipped) or "the set is empty")
    return KeySet(usable, tuple(skipped))


def parse_jwk(entry: object) -> JwtKey | str:
    """A public signing key of a JWK with its ``kid`` and ``alg``, or what is wrong."""
    if not isinstance(entry, dict):
        return "not a JSON object"
    key_id, name = entry.get("kid"), entry.get("alg")
    if not isinstance(key_id, str) or not 0 < len(key_id) <= 128 or not _printable(key_id):
        return "needs a kid (1-128 printable ASCII characters)"
    algorithm = ALGORITHMS.get(name) if isinstance(name, str) else None
    if algorithm is None:
        return f"kid {key_id}: needs an alg, one of {', '.join(ALGORITHMS)}"
    if algorithm.family == HMAC or _PRIVATE_MEMBERS.intersection(entry):
        return f"kid {key_id}: a JWKS holds public keys only (no secret, no private key)"
    if entry.get("use", "sig") != "sig":
        return f"kid {key_id}: not a signing key (use)"
    operations = entry.get("key_ops")
    if operations is not None and (not isinstance(operations, list) or "verify" not in operations):
        return f"kid {key_id}: not a verifying key (key_ops)"
    public = _public_key(entry, algorithm)
    if isinstance(public, str):
        return f"kid {key_id}: {public}"
    return JwtKey(key_id, algorithm, public=public)


def _printable(text: str) -> bool:
    return all(character in _KID_CHARACTERS for character in text)


def _public_key(entry: dict[str, Any], algorithm: Algorithm) -> PublicKey | str:
    kty = entry.get("kty")
    try:
        if algorithm.family in (RSA, PSS) and kty == "RSA":
            n, e = _member(entry, "n"), _member(entry, "e")
            public: PublicKey = rsa.RSAPublicNumbers(e, n).public_key()
        elif algorithm.family == ECDSA and kty == "EC" and entry.get("crv") == algorithm.curve:
            size = algorithm.size // 2
            x, y = _member(entry, "x", size), _member(entry, "y", size)
            public = ec.EllipticCurvePublicNumbers(x, y, _CURVES[algorithm.curve]).public_key()
        elif algorithm.family == EDDSA and kty == "OKP" and entry.get("crv") == "Ed25519":
            public = ed25519.Ed25519PublicKey.from_public_bytes(_bytes(entry, "x", 32))
        else:
            return f"kty and crv do not fit alg {algorithm.name}"
    except ValueError:
        return "its key members are not a valid key (strict base64url, on the curve)"
    return public_key_problem(algorithm, public) or public


def _bytes(entry: dict[str, Any], name: str, size: int = 0) -> bytes:
    text = entry.get(name)
    value = URLSAFE_NOPAD.decode(text) if isinstance(text, str) else None
    if value is None or (size and len(value) != size):
        raise ValueError(name)
    return value


def _member(entry: dict[str, Any], name: str, size: int = 0) -> int:
    return int.from_bytes(_bytes(entry, name, size))


def jwks_file_keys(data: bytes) -> tuple[list[KeyMaterial], tuple[str, ...]] | str:
    """A JWKS file's keys as the config loader hands keys to a scheme (each public key as
    PEM, pinned to its ``alg``), and what was left out; or what keeps the set from use."""
    found = parse_jwks(data)
    if isinstance(found, str):
        return found
    pem, spki = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    materials = [
        KeyMaterial(key.id, public_key_pem=key.public.public_bytes(pem, spki),
                    algorithm=key.algorithm.name)
        for key in found.keys
        if key.public is not None
    ]  # fmt: skip
    return materials, found.skipped
