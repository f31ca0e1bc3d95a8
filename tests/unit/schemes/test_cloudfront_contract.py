"""Scheme ``cloudfront``: the shared contract (RSA, ECDSA, custom policies), and CloudFront's
URL-safe base64."""

from __future__ import annotations

import base64
from typing import ClassVar

from sidecar.schemes.base import KeyMaterial, SourceScheme
from sidecar.schemes.cloudfront import b64decode, b64encode
from tests.support.cloudfront import ORIGIN, material
from tests.support.scheme_contract import LIFETIME, NOW, Presented, SchemeContract


class _CloudFrontContract(SchemeContract):
    scheme_name: ClassVar[str] = "cloudfront"
    settings: ClassVar[dict[str, str]] = {"public_origin": ORIGIN}
    path_prefix: ClassVar[str] = "/acme/"
    unsigned_url: ClassVar[str] = f"{ORIGIN}/acme/database-internals.jpg?w=400&h=600&fit=crop"
    signature_param: ClassVar[str] = "Signature"
    bad_signature_values: ClassVar[list[str]] = [
        "abc",  # not a multiple of 4
        "ab+c",  # standard base64 alphabet, not CloudFront's
        "ab/c",
        "ab==",
        "a_bc",  # padding in the middle
        "____",
        "%41BCD",
    ]
    kind: ClassVar[str] = "rsa"
    _serial: ClassVar[list[int]] = [0]

    def key_material(self, key_id: str) -> KeyMaterial:
        self._serial[0] += 1
        return material(key_id, self.kind, f"{key_id}-{self._serial[0]}")


class TestCloudFrontRsa(_CloudFrontContract):
    kind = "rsa"


class TestCloudFrontEcdsa(_CloudFrontContract):
    kind = "ecdsa"


class TestCloudFrontCustomPolicy(_CloudFrontContract):
    """The same contract for custom policies (a not-before condition forces one)."""

    signature_param = "Signature"

    def grant(self, expires: int) -> dict[str, int]:
        return {"expires": expires, "not_before": NOW - 3600}

    def sign(self, verifier: SourceScheme, *, expires: int = NOW + LIFETIME) -> Presented:
        signed = super().sign(verifier, expires=expires)
        assert "Policy=" in signed.uri
        return signed


def test_strict_base64() -> None:
    assert b64decode(b64encode(b"\x00\xff" * 10)) == b"\x00\xff" * 10
    for bad in ["", "a", "ab=c", "ab+/", "YQ==", "Y Q__", "YQ_"]:
        assert b64decode(bad) is None, bad
    assert base64.b64encode(b"a").decode() == "YQ=="  # the alphabet swap, explained
    assert b64decode("YQ__") == b"a"
