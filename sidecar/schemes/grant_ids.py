"""A grant's one identity, for revocations and use counts: the signature a scheme
verified, as bytes. Encodings are gone once decoded (hex case, base64 alphabets), which
leaves ECDSA: ``(r, s)`` and ``(r, n - s)`` both verify, so a leaked URL re-spelt with
the other ``s`` would escape a revocation of the first. Its identity is ``r`` and the
lower of the two ``s``, at the curve's fixed width.
"""

from __future__ import annotations

from typing import Final

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

# The order n of each curve's base point (SEC 2, "Recommended Elliptic Curve Domain
# Parameters", sections 2.4.2 and 2.5.1), and its width in bytes.
_ORDERS: Final[dict[str, tuple[int, int]]] = {
    "secp256r1": (0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551, 32),
    "secp384r1": (
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
        48,
    ),
}


def ecdsa_low_s(r: int, s: int, curve: ec.EllipticCurve) -> bytes:
    """``r || min(s, n - s)``, each at the curve's width."""
    order, width = _ORDERS[curve.name]
    return r.to_bytes(width) + min(s, order - s).to_bytes(width)


def ecdsa_der(signature: bytes, curve: ec.EllipticCurve) -> bytes:
    """The identity of a DER-encoded ECDSA signature that has verified."""
    r, s = decode_dss_signature(signature)
    return ecdsa_low_s(r, s, curve)


def ecdsa_raw(signature: bytes, curve: ec.EllipticCurve) -> bytes:
    """The identity of a raw ``r || s`` ECDSA signature (JWS) that has verified."""
    half = len(signature) // 2
    return ecdsa_low_s(int.from_bytes(signature[:half]), int.from_bytes(signature[half:]), curve)
