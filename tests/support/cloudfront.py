"""What the ``test_cloudfront_*`` scheme modules share: key pairs made once per run, botocore's real
CloudFrontSigner (canned and custom policies), and the decision for a signed URL."""

from __future__ import annotations

import datetime
import functools

from botocore.signers import CloudFrontSigner
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from sidecar.core.verdict import Reason
from sidecar.policy.decide import Decider, RequestFacts
from sidecar.schemes import cloudfront_keys as keys
from sidecar.schemes.base import KeyMaterial
from tests.support.configs import cloudfront_source, sidecar_config
from tests.support.scheme_contract import NOW

ORIGIN = "https://cdn.example.com"
CLIENT_IP = "203.0.113.5"


@functools.cache
def pair(kind: str, label: str) -> tuple[bytes, bytes]:
    """A key pair per (kind, label), made once per test run."""
    return keys.new_key_pair(kind)


def material(key_id: str, kind: str = "rsa", label: str | None = None) -> KeyMaterial:
    private, public = pair(kind, label or key_id)
    return KeyMaterial(key_id, public_key_pem=public, private_key_pem=private)


# --- botocore's CloudFrontSigner -------------------------------------------------------

SIGNERS = {
    "rsa-sha1": ("rsa", hashes.SHA1, False),
    "rsa-sha256": ("rsa", hashes.SHA256, True),
    "ecdsa-sha1": ("ecdsa", hashes.SHA1, False),
    "ecdsa-sha256": ("ecdsa", hashes.SHA256, True),
}
PATHS = [
    "/acme/a.jpg",
    "/acme/a.jpg?w=400&h=600",
    "/acme/my%20photo%2B1.jpg",
    "/acme/caf%C3%A9/%E6%97%A5%E6%9C%AC.jpg?lang=%C3%A9",
    "/acme/q.jpg?text=a%26b%3Dc&empty=&flag",
    "/acme/100%25.jpg?x=%25",
]
KEY_IDS = {"rsa": "KRSA2026", "ecdsa": "KEC2026"}

# Source "acme" (both botocore key pairs; the RSA one also signs) and source "other",
# whose key must never verify an "acme" URL. clock_skew = 0: expiry edges are exact.
POLICY_CONFIG = sidecar_config(
    cloudfront_source(
        "acme",
        "/acme/",
        {KEY_IDS["rsa"]: ("rsa.pub.pem", "rsa.pem"), KEY_IDS["ecdsa"]: "ecdsa.pub.pem"},
        public_origin=ORIGIN,
    ),
    cloudfront_source("other", "/other/", {"KOTHER": "other.pub.pem"}, public_origin=ORIGIN),
    server={"clock_skew": 0},
)


def botocore_signer(name: str) -> tuple[CloudFrontSigner, bool]:
    kind, algorithm, sha256 = SIGNERS[name]
    private = load_pem_private_key(pair(kind, "botocore")[0], password=None)

    def sign(message: bytes) -> bytes:
        if isinstance(private, rsa.RSAPrivateKey):
            return private.sign(message, padding.PKCS1v15(), algorithm())
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        return private.sign(message, ec.ECDSA(algorithm()))

    return CloudFrontSigner(KEY_IDS[kind], sign), sha256


def when(seconds: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)


def decide(policy: Decider, url: str, now: int = NOW, ip: str = CLIENT_IP) -> tuple[int, Reason]:
    decision = policy.decide(
        RequestFacts(url.removeprefix(ORIGIN), "GET", "cdn.example.com", ip), now
    )
    return decision.status, decision.reason


def canned(name: str, path: str, expires: int = NOW + 600) -> str:
    signer, sha256 = botocore_signer(name)
    url: str = signer.generate_presigned_url(ORIGIN + path, date_less_than=when(expires))
    return url + ("&Hash-Algorithm=SHA256" if sha256 else "")


def custom(
    name: str,
    path: str,
    *,
    resource: str | None = None,
    expires: int = NOW + 600,
    not_before: int | None = None,
    ip: str | None = None,
) -> str:
    signer, sha256 = botocore_signer(name)
    document = signer.build_policy(
        resource or ORIGIN + path,
        when(expires),
        date_greater_than=when(not_before) if not_before is not None else None,
        ip_address=ip,
    )
    url: str = signer.generate_presigned_url(ORIGIN + path, policy=document)
    return url + ("&Hash-Algorithm=SHA256" if sha256 else "")


def param(url: str, name: str) -> str:
    """The raw value of the query parameter ``name``."""
    return url.partition(f"{name}=")[2].partition("&")[0]


def with_param(url: str, name: str, value: str) -> str:
    """``url`` with the raw value of its parameter ``name`` replaced by ``value``."""
    return url.replace(f"{name}={param(url, name)}", f"{name}={value}", 1)
