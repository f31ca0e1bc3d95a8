"""Keys for the ``jwt`` tests, one per algorithm, made once per process; and the tokens
the third-party signers (PyJWT, joserfc) make with them."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import jwt as pyjwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc import jwk as rfc_jwk
from joserfc import jwt as rfc_jwt
from joserfc.errors import SecurityWarning

from sidecar.schemes.base import KeyMaterial

ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384",
              "PS512", "ES256", "ES384", "EdDSA")  # fmt: skip
_PEM = serialization.Encoding.PEM


class JwtTestKey(NamedTuple):
    kid: str
    algorithm: str
    secret: bytes | None  # HMAC
    private_pem: bytes | None
    public_pem: bytes | None

    def material(self, *, signs: bool = True) -> KeyMaterial:
        return KeyMaterial(
            self.kid, secret=self.secret, public_key_pem=self.public_pem,
            private_key_pem=self.private_pem if signs else None, algorithm=self.algorithm,
        )  # fmt: skip

    def signing_key(self) -> bytes:
        """What PyJWT signs with: the secret or the private PEM."""
        return self.secret or self.private_pem or b""

    def toml(self, folder: Path) -> dict[str, str]:
        """The ``[[sources.keys]]`` fields, its PEM files written into ``folder``."""
        if self.secret is not None:
            return {"algorithm": self.algorithm, "secret": self.secret.decode()}
        public = folder / f"{self.kid}.pub.pem"
        public.write_bytes(self.public_pem or b"")
        return {"algorithm": self.algorithm, "public_key_file": str(public)}

    def public_jwk(self) -> dict[str, Any]:
        """The public key as a JWK with kid and alg (as an identity provider publishes it),
        written by PyJWT."""
        public = serialization.load_pem_public_key(self.public_pem or b"")
        jwk = pyjwt.get_algorithm_by_name(self.algorithm).to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}


_KTY = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP", "HS": "oct"}


@functools.cache
def key_for(algorithm: str, kid: str | None = None) -> JwtTestKey:
    kid = kid or f"k-{algorithm.lower()}"
    if algorithm.startswith("HS"):
        size = int(algorithm[2:]) // 8
        return JwtTestKey(kid, algorithm, f"{kid}-".encode().ljust(size + 8, b"s"), None, None)
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    if algorithm[:2] in ("RS", "PS"):
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif algorithm == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif algorithm == "ES384":
        private = ec.generate_private_key(ec.SECP384R1())
    else:
        private = ed25519.Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        _PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private.public_key().public_bytes(
        _PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return JwtTestKey(kid, algorithm, None, private_pem, public_pem)


def pyjwt_token(key: JwtTestKey, claims: dict[str, Any], **headers: Any) -> str:
    return pyjwt.encode(claims, key.signing_key(), algorithm=key.algorithm,
                        headers={"kid": key.kid, **headers})  # fmt: skip


def joserfc_token(key: JwtTestKey, claims: dict[str, Any]) -> str:
    material = key.secret or key.private_pem or b""
    signing = rfc_jwk.import_key(material, _KTY[key.algorithm[:2]])  # type: ignore[call-overload]
    header = {"alg": key.algorithm, "kid": key.kid}
    with warnings.catch_warnings():
        # joserfc marks "EdDSA" deprecated in favour of RFC 9864's "Ed25519": still the
        # name PyJWT and jose write, and the one the sidecar reads.
        warnings.simplefilter("ignore", SecurityWarning)
        return rfc_jwt.encode(header, claims, signing, algorithms=[key.algorithm])
