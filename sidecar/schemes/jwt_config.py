"""The ``jwt`` scheme's settings, its configured keys (each pinned to one algorithm), and
the keys ``sidecar token new`` makes for it.

Pure: no I/O (the config loader reads the key files and ``jwks_file``).
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from sidecar.errors import SchemeError
from sidecar.schemes.base import KeyMaterial, NewKey
from sidecar.schemes.jwt_claims import ScopeMode
from sidecar.schemes.jwt_keys import ALGORITHMS, HMAC, JwtKey, PublicKey, public_key_problem
from sidecar.schemes.settings import CookieSettings, setting

# A query parameter or cookie name: sent as is, with nothing to encode.
_NAME: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# The registered claims the scope cannot be (they hold times, issuers, audiences).
_NOT_A_SCOPE: Final = frozenset({"exp", "nbf", "iat", "iss", "aud", "jti", "ip"})


def _name_problem(value: str) -> str | None:
    return None if _NAME.fullmatch(value) else "1-64 of A-Z a-z 0-9 _ . -"


def _scope_claim_problem(value: str) -> str | None:
    if value in _NOT_A_SCOPE:
        return f"'{value}' is a registered claim with another meaning"
    return _name_problem(value)


def _scope_problem(value: str) -> str | None:
    modes = [mode.value for mode in ScopeMode]
    return None if value in modes else f"must be one of {', '.join(modes)}"


def _url_problem(value: str) -> str | None:
    """https://, or http:// to this machine (a key set over plain HTTP elsewhere could be
    replaced on the way). Empty: no URL."""
    if not value:
        return None
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
    except ValueError:
        return "is not a URL"
    if parts.scheme == "https" and host:
        return None
    if parts.scheme == "http" and (host == "localhost" or _loopback(host)):
        return None
    return "must be an https:// URL (http:// only to a loopback address)"


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _ranged(low: int, high: int) -> Callable[[int], str | None]:
    def problem(value: int) -> str | None:
        return None if low <= value <= high else f"must be {low}..{high} seconds"

    return problem


@dataclass(frozen=True, slots=True)
class JwtSettings(CookieSettings):
    token_param: str = setting("token", check=_name_problem)
    token_cookie: str = setting("jwt", check=_name_problem)
    # Read by the config loader into keys (config/keys.py), watched as a key file is.
    jwks_file: str = ""
    jwks_url: str = setting("", check=_url_problem)
    jwks_refresh: int = setting(300, check=_ranged(10, 86400))
    jwks_cooldown: int = setting(30, check=_ranged(1, 3600))
    issuer: str = ""
    audience: str = ""
    scope_claim: str = setting("sub", check=_scope_claim_problem)
    scope: str = setting(ScopeMode.PREFIX.value, check=_scope_problem)


# --- configured keys ------------------------------------------------------------------------


def build_keys(materials: tuple[KeyMaterial, ...]) -> tuple[JwtKey, ...]:
    """Every configured key pinned to its algorithm; ``SchemeError`` listing each problem."""
    problems: list[str] = []
    keys = [_key(material, problems) for material in materials]
    if problems:
        raise SchemeError("; ".join(problems))
    return tuple(key for key in keys if key is not None)


def _key(material: KeyMaterial, problems: list[str]) -> JwtKey | None:
    where = f"key '{material.id}'"
    algorithm = ALGORITHMS.get(material.algorithm or "")
    if algorithm is None:
        problems.append(f"{where}: algorithm must be one of {', '.join(ALGORITHMS)}")
        return None
    if algorithm.family == HMAC:
        problem = _secret_problem(material, algorithm.size)
        if problem is not None:
            problems.append(f"{where}: {problem}")
            return None
        return JwtKey(material.id, algorithm, secret=material.secret)
    if material.secret is not None or material.public_key_pem is None:
        problems.append(f"{where}: {algorithm.name} needs public_key_file (not a secret)")
        return None
    try:
        public = serialization.load_pem_public_key(material.public_key_pem)
    except (ValueError, TypeError):
        problems.append(f"{where}: public_key_file is not a PEM public key")
        return None
    problem = public_key_problem(algorithm, public)
    if problem is not None or not isinstance(public, PublicKey):
        problems.append(f"{where}: {problem}")
        return None
    private = _private(material, public, where, problems)
    return JwtKey(material.id, algorithm, public=public, private=private)


def _secret_problem(material: KeyMaterial, size: int) -> str | None:
    secret = material.secret
    if secret is None or material.public_key_pem is not None:
        return "HMAC algorithms need a secret (not public_key_file)"
    if len(secret) < size:
        # RFC 7518 §3.2: a key at least as long as the hash's output.
        return f"an HMAC secret of at least {size} bytes"
    if b"-----BEGIN" in secret:
        # A public key as an HMAC secret is the algorithm-confusion attack's key: anyone
        # holding the public key could sign.
        return "a PEM key is not an HMAC secret"
    return None


def _private(
    material: KeyMaterial, public: object, where: str, problems: list[str]
) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | None:
    if material.private_key_pem is None:
        return None
    try:
        private = serialization.load_pem_private_key(material.private_key_pem, password=None)
    except (ValueError, TypeError):
        problems.append(f"{where}: private_key_file is not an unencrypted PEM private key")
        return None
    if not isinstance(
        private, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    ) or _spki(private.public_key()) != _spki(public):
        problems.append(f"{where}: private_key_file does not match public_key_file")
        return None
    return private


def _spki(public: object) -> bytes:
    if not isinstance(public, PublicKey):
        return b""
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# --- new keys -------------------------------------------------------------------------------

KEY_TYPES: Final = ("es256", "eddsa", "rs256", "hmac")


def new_jwt_key(key_type: str) -> NewKey:
    """A key pair (PKCS#8 and SPKI PEM) or a 512-bit HMAC secret (enough for HS512)."""
    if key_type == "hmac":
        return NewKey(secret=secrets.token_urlsafe(64))
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    if key_type == "es256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif key_type == "eddsa":
        private = ed25519.Ed25519PrivateKey.generate()
    elif key_type == "rs256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        raise SchemeError(f"unknown key type '{key_type}'")
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return NewKey(private_pem=private_pem, public_pem=public_pem)
