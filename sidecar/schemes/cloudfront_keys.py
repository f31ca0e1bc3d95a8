"""New key pairs for the ``cloudfront`` scheme, as PEM (private PKCS#8, public SPKI)."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sidecar.errors import SchemeError


def new_key_pair(kind: str) -> tuple[bytes, bytes]:
    """``rsa`` (2048 bits, what CloudFront accepts) or ``ecdsa`` (P-256)."""
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if kind == "rsa":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif kind == "ecdsa":
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        raise SchemeError(f"unknown key type '{kind}'")
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem
