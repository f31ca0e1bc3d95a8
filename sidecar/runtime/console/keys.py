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

SHARED_SECRET = "shared secret"  # noqa: S105 (a kind of key, not a secret)
PUBLIC_KEY = "public key"
FINGERPRINT_DIGITS = 12


@dataclass(frozen=True, slots=True)
class KeyView:
    id: str
    kind: str  # SHARED_SECRET or PUBLIC_KEY
    fingerprint: str


def key_views(source: SourceSettings) -> list[KeyView]:
    """The source's keys, newest first (the first one signs)."""
    if source.verifier is None:
        return []
    secrets = dict(source.verifier.shared_secrets())
    publics = dict(source.verifier.public_keys())
    views = []
    for key_id in source.verifier.key_ids:
        if key_id in secrets:
            views.append(KeyView(key_id, SHARED_SECRET, _fingerprint(secrets[key_id])))
        elif key_id in publics:
            views.append(KeyView(key_id, PUBLIC_KEY, _fingerprint(publics[key_id])))
    return views


def reveal(source: SourceSettings, key_id: str) -> tuple[str, str] | None:
    """(kind, text) of one key: the token as configured, or the public key as PEM."""
    if source.verifier is None:
        return None
    secret = dict(source.verifier.shared_secrets()).get(key_id)
    if secret is not None:
        return SHARED_SECRET, _text(secret)
    der = dict(source.verifier.public_keys()).get(key_id)
    if der is not None:
        pem = serialization.load_der_public_key(der).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return PUBLIC_KEY, pem.decode()
    return None


def _fingerprint(material: bytes) -> str:
    return hashlib.sha256(material).hexdigest()[:FINGERPRINT_DIGITS]


def _text(secret: bytes) -> str:
    """A token as the operator configured it; bytes that are not text, as hex."""
    try:
        text = secret.decode("utf-8")
    except UnicodeDecodeError:
        return "hex:" + secret.hex()
    return text if text.isprintable() else "hex:" + secret.hex()
