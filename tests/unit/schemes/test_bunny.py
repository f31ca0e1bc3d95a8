"""Scheme ``bunny``: the shared contract, BunnyWay's published vectors (``HS256-``), the
classic Node signer's and openssl's basic tokens, verified and signed byte for byte."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from sidecar.core.verdict import Reason, Verdict
from sidecar.schemes.base import KeyMaterial, SourceScheme, VerifyRequest
from tests.support.scheme_contract import (
    LIFETIME,
    NOW,
    Presented,
    SchemeContract,
    build_source,
    parse,
    sign,
)

VECTORS = json.loads((Path(__file__).parent / "vectors" / "bunny.json").read_text("utf-8"))
VECTOR_KEY = VECTORS["key"].encode()
VECTOR_EXPIRES: int = VECTORS["expires"]
VECTOR_HOST = "https://token-tester.b-cdn.net"
SECRET = b"bunny-zone-security-key"
_fresh = itertools.count()


def source(*secrets: bytes, prefix: str = "/", **settings: Any) -> SourceScheme:
    keys = [KeyMaterial(f"k{index}", secret=secret) for index, secret in enumerate(secrets)]
    return build_source("bunny", keys, prefix=prefix, settings=settings)


def check(verifier: SourceScheme, uri: str, now: float = NOW, *, ip: str | None = None,
          country: str | None = None) -> Verdict:  # fmt: skip
    uri = uri.removeprefix(VECTOR_HOST)
    return verifier.verify(VerifyRequest(parse(uri), now, 0, ip, None, None, country))


def b64url(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def hs256_token(secret: bytes, path: str, expires: int, data: str = "") -> str:
    """An unbound ``HS256-`` token with the standard library alone."""
    digest = hmac.new(secret, f"{path}{expires}{data}".encode(), hashlib.sha256).digest()
    return "HS256-" + b64url(digest)


class TestBunny(SchemeContract):
    scheme_name = "bunny"
    settings: ClassVar[Mapping[str, Any]] = {}
    signature_param = "token"
    bad_signature_values = (
        "",
        "A" * 42,  # 31 bytes
        "A" * 44,  # 33 bytes
        "A" * 42 + "B",  # unused bits set
        "A" * 42 + "+",  # the standard alphabet
        "A" * 42 + "%2F",
        "A" * 43 + "=",  # padded
        "1-" + "A" * 42,
        "2-" + "A" * 43,  # a flag Bunny does not write
        "é" * 43,
    )

    def key_material(self, key_id: str) -> KeyMaterial:
        return KeyMaterial(key_id, secret=f"bunny-key-{next(_fresh):08d}".encode())

    # The token is first in the query, the signed parameters after it: the contract's
    # "signature" is the digest after "HS256-", and its "first value" the first parameter
    # after the token.

    def signature(self, presented: Presented) -> str:
        return super().signature(presented).removeprefix("HS256-")

    def with_signature(self, presented: Presented, value: str) -> Presented:
        return super().with_signature(presented, "HS256-" + value)

    def test_signing_keeps_the_unsigned_url(self) -> None:
        verifier = self.single()
        signed = self.sign(verifier)
        path, _, query = signed.uri.partition("?")
        params = query.split("&")
        assert path == "/books/database-internals.jpg"
        assert params[0].startswith("token=HS256-") and params[-1].startswith("expires=")
        assert params[1:-1] == ["fit=crop", "h=600", "w=400"]  # sorted, as Bunny signs them

    def _value_changed(self, uri: str) -> str:
        return uri.replace("&fit=crop&", "&fit=crops&")

    def test_tampered_query_value(self) -> None:
        verifier = self.single()
        signed = self.sign(verifier)
        tampered = self.with_uri(signed, self._value_changed(signed.uri))
        assert self.verify(verifier, tampered).reason is Reason.INVALID

    def test_removed_param(self) -> None:
        verifier = self.single()
        signed = self.sign(verifier)
        removed = self.with_uri(signed, signed.uri.replace("&fit=crop&", "&"))
        assert self.verify(verifier, removed).reason is Reason.INVALID

    def test_added_param(self) -> None:
        # Between the token and the expiry, in order: signed data that was not signed.
        verifier = self.single()
        signed = self.sign(verifier)
        added = self.with_uri(signed, signed.uri.replace("&fit=crop&", "&a=1&fit=crop&"))
        assert self.verify(verifier, added).reason is Reason.INVALID
        path, _, query = signed.uri.partition("?")
        before = self.with_uri(signed, f"{path}?extra=1&{query}")  # out of the one layout
        assert self.verify(verifier, before).reason is Reason.MALFORMED

    def test_expired_and_tampered_is_invalid_not_expired(self) -> None:
        verifier = self.single()
        signed = self.sign(verifier, expires=NOW - 100)
        forged = self.with_uri(signed, self._value_changed(signed.uri))
        assert self.verify(verifier, forged).reason is Reason.INVALID


# --- known answers --------------------------------------------------------------------------


def _query_form(vectors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [vector for vector in vectors if "/bcdn_token=" not in vector["signedUrl"]]


HS256 = _query_form(VECTORS["hs256"]["vectors"])


def _unsigned(vector: dict[str, Any]) -> str:
    """The URL the vendor signed, its countries and limit as query parameters."""
    extra: dict[str, str] = {"token_countries": vector["countriesAllowed"],
             "token_countries_blocked": vector["countriesBlocked"],
             "limit": str(vector["speedLimit"] or "")}  # fmt: skip
    query = "&".join(f"{k}={v.replace(',', '%2C')}" for k, v in sorted(extra.items()) if v)
    path: str = vector["path"]
    return VECTOR_HOST + path + (f"?{query}" if query else "")


@pytest.mark.parametrize("vector", HS256, ids=lambda v: v["name"])
def test_hs256_vectors_verify(vector: dict[str, Any]) -> None:
    verifier = source(VECTOR_KEY)
    ip, country = vector["userIp"] or "198.51.100.9", vector["countryCode"]
    verdict = check(verifier, vector["signedUrl"], VECTOR_EXPIRES - 1, ip=ip, country=country)
    assert (verdict.reason, verdict.key_id, verdict.expires_at) == (Reason.OK, "k0", VECTOR_EXPIRES)
    assert check(verifier, vector["signedUrl"], VECTOR_EXPIRES, ip=ip, country=country).reason \
        is Reason.EXPIRED  # fmt: skip
    wrong_key = check(source(b"another key"), vector["signedUrl"], ip=ip, country=country)
    assert wrong_key.reason is Reason.INVALID
    bound_or_countries = bool(vector["userIp"] or vector["countriesAllowed"]
                              or vector["countriesBlocked"])  # fmt: skip
    assert verdict.shareable is not bound_or_countries


@pytest.mark.parametrize("vector", [v for v in HS256 if not v["ignoreParams"]],
                         ids=lambda v: v["name"])  # fmt: skip
def test_hs256_vectors_are_signed_byte_for_byte(vector: dict[str, Any]) -> None:
    grant: dict[str, Any] = {"expires": VECTOR_EXPIRES}
    if vector["userIp"]:
        grant["client_ip"] = vector["userIp"]
    if vector["pathAllowed"]:
        grant["prefix"] = vector["pathAllowed"]
    assert sign(source(VECTOR_KEY), _unsigned(vector), **grant) == vector["signedUrl"]


def test_vectors_name_their_generators() -> None:
    assert "e2e/vectors.json" in VECTORS["hs256"]["generator"]
    assert "nodejs/token.js" in VECTORS["classic"]["generator"]
    assert "openssl" in VECTORS["basic"]["generator"]
    assert len(HS256) == 12 and len(VECTORS["classic"]["vectors"]) == 7


def test_hs256_address_is_the_client_s_and_ipv6_its_64() -> None:
    verifier = source(VECTOR_KEY)
    v4, v6 = (next(v for v in HS256 if v["name"] == name) for name in ("ip_v4_only", "ip_v6_only"))
    at = VECTOR_EXPIRES - 1
    assert check(verifier, v4["signedUrl"], at, ip="1.2.3.5").reason is Reason.INVALID
    assert check(verifier, v4["signedUrl"], at, ip="::ffff:1.2.3.4").reason is Reason.OK
    same_64 = "2001:db8:85a3::ffff:1"
    assert check(verifier, v6["signedUrl"], at, ip=same_64).reason is Reason.OK
    assert check(verifier, v6["signedUrl"], at, ip="2001:db8:85a4::1").reason is Reason.INVALID
    assert check(verifier, v6["signedUrl"], at, ip="not an address").reason is Reason.INVALID
    assert check(verifier, v6["signedUrl"], at, ip=None).reason is Reason.IP_MISMATCH


def test_countries_are_the_request_s() -> None:
    verifier = source(VECTOR_KEY)
    allowed, blocked = (next(v for v in HS256 if v["name"] == name)["signedUrl"]
                        for name in ("countries_only", "blocked_only"))  # fmt: skip
    at = VECTOR_EXPIRES - 1
    assert check(verifier, allowed, at, country="US").reason is Reason.OK
    assert check(verifier, allowed, at, country="RU").reason is Reason.COUNTRY
    assert check(verifier, allowed, at, country=None).reason is Reason.COUNTRY  # unknown: XX
    assert check(verifier, allowed, at, country="us").reason is Reason.COUNTRY
    assert check(verifier, blocked, at, country="RU").reason is Reason.COUNTRY
    assert check(verifier, blocked, at, country=None).reason is Reason.OK
    # A forgery never learns its country failed.
    forged = allowed.replace("token=HS256-i", "token=HS256-j")
    assert check(verifier, forged, at, country="RU").reason is Reason.INVALID


@pytest.mark.parametrize("vector", VECTORS["classic"]["vectors"], ids=lambda v: v["name"])
def test_classic_vectors_verify(vector: dict[str, Any]) -> None:
    verifier = source(VECTOR_KEY)
    bound = bool(vector["userIp"])
    ip = vector["userIp"] or "198.51.100.9"
    verdict = check(verifier, vector["signedUrl"], VECTOR_EXPIRES - 1, ip=ip, country="CA")
    assert (verdict.reason, verdict.key_id) == (Reason.OK, "k0")
    lists = vector["countriesAllowed"] or vector["countriesBlocked"]
    assert verdict.shareable is not (bound or bool(lists))
    other = check(verifier, vector["signedUrl"], VECTOR_EXPIRES - 1, ip="1.2.3.5", country="CA")
    assert other.reason is (Reason.INVALID if bound else Reason.OK)
    unaddressed = check(verifier, vector["signedUrl"], VECTOR_EXPIRES - 1, country="CA")
    assert unaddressed.reason is (Reason.INVALID if bound else Reason.OK)


@pytest.mark.parametrize("vector", VECTORS["basic"]["vectors"], ids=lambda v: v["name"])
def test_basic_vectors_verify_and_are_signed(vector: dict[str, Any]) -> None:
    verifier = source(VECTOR_KEY, variant="basic")
    ip = vector["userIp"] or None
    verdict = check(verifier, vector["signedUrl"], VECTOR_EXPIRES - 1, ip=ip)
    assert (verdict.reason, verdict.shareable) == (Reason.OK, ip is None)
    grant: dict[str, Any] = {"expires": VECTOR_EXPIRES, "client_ip": ip}
    assert sign(verifier, VECTOR_HOST + vector["path"], **grant) == vector["signedUrl"]
    # An advanced source reads no MD5 token, a basic one no SHA-256 token.
    assert check(source(VECTOR_KEY), vector["signedUrl"], ip=ip).reason is Reason.MALFORMED
    assert check(verifier, HS256[0]["signedUrl"]).reason is Reason.MALFORMED


def test_path_form_is_not_read_without_path_tokens() -> None:
    directory = [v for v in VECTORS["hs256"]["vectors"] if "/bcdn_token=" in v["signedUrl"]]
    assert directory
    for vector in directory:
        assert check(source(VECTOR_KEY), vector["signedUrl"]).reason is Reason.MISSING


def test_the_standard_library_agrees() -> None:
    expires = NOW + LIFETIME
    token = hs256_token(SECRET, "/books/a.jpg", expires, "w=400")
    uri = f"/books/a.jpg?token={token}&w=400&expires={expires}"
    assert check(source(SECRET), uri).reason is Reason.OK
    assert sign(source(SECRET), "/books/a.jpg?w=400", expires=expires) == uri
