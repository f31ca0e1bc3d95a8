"""What the console shows of a source's keys: ids and fingerprints, and the key itself
only when an operator asks for it (Show Token / Show public key).

A fingerprint is the first 12 hex digits of SHA-256 over the key material (the shared
secret's bytes, or the public key's DER SubjectPublicKeyInfo): enough to tell keys apart
and to check a copy (``printf %s "$TOKEN" | sha256sum``), never the key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization

from sidecar.policy.settings import SourceSettings
from sidecar.schemes.base import KeyKind

FINGERPRINT_DIGITS = 12


@dataclass(frozen=True, slots=True)
class KeyView:
    id: str
    kind: KeyKind
    fingerprint: str


def key_views(source: SourceSettings) -> list[KeyView]:
    """The source's keys, newest first (the first one signs)."""
    keys = source.signatures.key_material() if source.signatures is not None else ()
    return [KeyView(key.id, key.kind, _fingerprint(key.material)) for key in keys]


def reveal(source: SourceSettings, key_id: str) -> tuple[KeyKind, str] | None:
    """(kind, text) of one key: the token as configured, or the public key as PEM."""
    keys = source.signatures.key_material() if source.signatures is not None else ()
    key = next((key for key in keys if key.id == key_id), None)
    if key is None:
        return None
    if key.kind is KeyKind.SHARED_SECRET:
        return key.kind, _text(key.material)
    pem = serialization.load_der_public_key(key.material).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key.kind, pem.decode()


def _fingerprint(material: bytes) -> str:
    return hashlib.sha256(material).hexdigest()[:FINGERPRINT_DIGITS]


def _text(secret: bytes) -> str:
    """A token as the operator configured it; bytes that are not text, as hex."""
    try:
        text = secret.decode("utf-8")
    except UnicodeDecodeError:
        return "hex:" + secret.hex()
    return text if text.isprintable() else "hex:" + secret.hex()
