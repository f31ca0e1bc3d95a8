"""Scheme ``cloudflare``: the shared contract, the Worker example's URLs byte for byte,
the WAF rule's query form, the issue time's edges and every other spelling refused."""

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

from sidecar.core import canonical
from sidecar.core.verdict import Reason
from sidecar.errors import SchemeError
from sidecar.schemes.base import KeyMaterial, SourceScheme
from tests.support.scheme_contract import (
    LIFETIME,
    NOW,
    Presented,
    SchemeContract,
    build_source,
    sign,
)
from tests.support.scheme_contract import verify as verify_verdict

VECTORS = json.loads((Path(__file__).parent / "vectors" / "cloudflare.json").read_text("utf-8"))
SECRET = b"cloudflare-test-secret"
_fresh = itertools.count()


def source(*secrets: bytes, max_age: int = LIFETIME, **settings: Any) -> SourceScheme:
    keys = [KeyMaterial(f"k{index}", secret=secret) for index, secret in enumerate(secrets)]
    return build_source("cloudflare", keys, settings={"max_age": max_age, **settings})


def reason(verifier: SourceScheme, uri: str, now: float = NOW, skew: int = 0) -> Reason:
    return verify_verdict(verifier, uri, now, skew=skew).reason


def token(secret: bytes, message: str, issued: int) -> str:
    """The token as Cloudflare documents it, with the standard library alone."""
    digest = hmac.new(secret, f"{message}{issued}".encode(), hashlib.sha256).digest()
    text = base64.b64encode(digest).decode()
    return f"{issued}-" + text.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")


class TestCloudflare(SchemeContract):
    scheme_name = "cloudflare"
    settings: ClassVar[Mapping[str, Any]] = {"max_age": LIFETIME}
    signature_param = "verify"
    bad_signature_values = (
        "",
        "A" * 43 + "=",  # a raw "=": a second spelling of "%3D"
        "A" * 43 + "%3d",  # lowercase hex
        "A" * 43,  # unpadded
        "A" * 42 + "B%3D",  # unused bits set
        "A" * 42 + "-_",  # the URL-safe alphabet
        "A" * 41 + "/A%3D",  # a raw "/"
        "A" * 41 + "+A%3D",  # a raw "+" (a space, once decoded)
        "A" * 41 + "%2bA%3D",
        "A" * 40 + "%41A%3D",  # an escape that is not one of the three
        "A" * 22 + "%3D%3D",  # 16 bytes
        "A" * 86 + "%3D%3D",  # 64 bytes
        "é" * 43 + "%3D",
    )

    def key_material(self, key_id: str) -> KeyMaterial:
        return KeyMaterial(key_id, secret=f"cf-secret-{next(_fresh):08d}".encode())

    # The contract's "signature" is the MAC after "<time>-": the time is tested below.

    def signature(self, presented: Presented) -> str:
        return super().signature(presented).partition("-")[2]

    def with_signature(self, presented: Presented, value: str) -> Presented:
        issued = super().signature(presented).partition("-")[0]
        return super().with_signature(presented, f"{issued}-{value}")

    def test_truncated_signature(self) -> None:
        # One character short is one escape short: "%3D" (the padding) gone.
        verifier = self.single()
        signed = self.sign(verifier)
        value = self.signature(signed)
        assert value.endswith("%3D")
        truncated = self.with_signature(signed, value.removesuffix("%3D"))
        assert self.verify(verifier, truncated).reason is Reason.MALFORMED


# --- known answers: Cloudflare's Worker example ------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["description"])
def test_vectors_verify_and_are_signed_byte_for_byte(vector: dict[str, Any]) -> None:
    verifier = source(vector["secret"].encode(), max_age=60)
    issued, uri = vector["time"], vector["expected"]
    verdict = verify_verdict(verifier, uri, issued + 59)
    assert (verdict.reason, verdict.key_id, verdict.expires_at) == (Reason.OK, "k0", issued + 60)
    assert reason(verifier, uri, issued + 60) is Reason.EXPIRED
    assert sign(verifier, uri.partition("?")[0], expires=issued + 60) == uri


def test_vectors_name_their_generator() -> None:
    assert all("Cloudflare Workers example" in v["generator"] for v in VECTORS["vectors"])
    assert any("%2F" in v["expected"] and "%2B" in v["expected"] for v in VECTORS["vectors"])


def test_the_standard_library_agrees() -> None:
    uri = f"/books/a.jpg?verify={token(SECRET, '/books/a.jpg', NOW)}"
    assert reason(source(SECRET), uri) is Reason.OK
    assert sign(source(SECRET), "/books/a.jpg", expires=NOW + LIFETIME) == uri


# --- the WAF rule's form: everything before the separator is signed --------------------------


def test_a_query_before_the_token_is_signed_as_the_waf_rule_reads_it() -> None:
    uri = f"/books/a.jpg?w=400&verify={token(SECRET, '/books/a.jpg?w=400', NOW)}"
    assert reason(source(SECRET), uri) is Reason.OK
    assert sign(source(SECRET), "/books/a.jpg?w=400", expires=NOW + LIFETIME) == uri
    # The Worker example signs the path alone: such a URL with a query does not verify.
    path_only = f"/books/a.jpg?w=400&verify={token(SECRET, '/books/a.jpg', NOW)}"
    assert reason(source(SECRET), path_only) is Reason.INVALID


def test_the_token_must_be_the_last_parameter_spelled_plainly() -> None:
    value = token(SECRET, "/books/a.jpg", NOW)
    assert reason(source(SECRET), f"/books/a.jpg?verify={value}&w=1") is Reason.MALFORMED
    assert reason(source(SECRET), f"/books/a.jpg?%76erify={value}") is Reason.MALFORMED
    twice = f"/books/a.jpg?verify={value}&verify={value}"
    assert reason(source(SECRET), twice) is Reason.NON_CANONICAL


def test_another_param_name() -> None:
    verifier = source(SECRET, param="cf_token")
    uri = f"/books/a.jpg?cf_token={token(SECRET, '/books/a.jpg', NOW)}"
    assert reason(verifier, uri) is Reason.OK
    assert sign(verifier, "/books/a.jpg", expires=NOW + LIFETIME) == uri
    assert reason(verifier, uri.replace("cf_token", "verify")) is Reason.MISSING


# --- the issue time -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "issued", ["", "0123", "-5", "+5", "1.5", "1e9", "\uff11\uff12\uff13", "1234567890123"]
)
def test_issue_times_in_another_spelling_are_malformed(issued: str) -> None:
    mac_text = token(SECRET, "/a.jpg", NOW).partition("-")[2]
    assert reason(source(SECRET), f"/a.jpg?verify={issued}-{mac_text}") is Reason.MALFORMED


def test_a_token_without_its_dash_is_malformed() -> None:
    value = token(SECRET, "/a.jpg", NOW).replace("-", "", 1)
    assert reason(source(SECRET), f"/a.jpg?verify={value}") is Reason.MALFORMED


def test_a_time_in_the_future_is_not_yet_valid_beyond_the_clock_skew() -> None:
    uri = f"/a.jpg?verify={token(SECRET, '/a.jpg', NOW + 10)}"
    verifier = source(SECRET)
    assert reason(verifier, uri, NOW + 10) is Reason.OK
    assert reason(verifier, uri, NOW + 9) is Reason.NOT_YET_VALID
    assert reason(verifier, uri, NOW, skew=10) is Reason.OK
    assert reason(verifier, uri, NOW, skew=9) is Reason.NOT_YET_VALID


def test_max_age_bounds_the_url_after_its_time() -> None:
    uri = f"/a.jpg?verify={token(SECRET, '/a.jpg', NOW)}"
    verifier = source(SECRET, max_age=30)
    assert verify_verdict(verifier, uri, NOW + 29).expires_at == NOW + 30
    assert reason(verifier, uri, NOW + 30) is Reason.EXPIRED
    assert reason(verifier, uri, NOW + 34, skew=5) is Reason.OK


def test_a_changed_time_is_invalid_never_expired_or_not_yet_valid() -> None:
    uri = f"/a.jpg?verify={token(SECRET, '/a.jpg', NOW - 7200)}"
    for forged in (NOW - 7199, NOW, NOW + 7200):
        changed = uri.replace(f"={NOW - 7200}-", f"={forged}-")
        assert reason(source(SECRET), changed) is Reason.INVALID


def test_every_changed_byte_is_refused() -> None:
    verifier = source(SECRET)
    uri = sign(verifier, "/books/a.jpg?w=400", expires=NOW + LIFETIME)
    for index in range(1, len(uri)):
        for char in "0xA%-":
            tampered = uri[:index] + char + uri[index + 1 :]
            if tampered != uri and canonical.parse(tampered) is not None:
                assert verify_verdict(verifier, tampered).reason is not Reason.OK, tampered


# --- settings and signing ------------------------------------------------------------------


def test_max_age_is_required_and_positive() -> None:
    with pytest.raises(SchemeError, match="max_age: required"):
        build_source("cloudflare", [KeyMaterial("k", secret=SECRET)])
    with pytest.raises(SchemeError, match="max_age: must be a positive"):
        source(SECRET, max_age=0)


@pytest.mark.parametrize("param", ["", "a b", "verify=", "a&b", "x" * 65])
def test_param_must_be_a_plain_name(param: str) -> None:
    with pytest.raises(SchemeError, match="param: must be"):
        source(SECRET, param=param)


def test_signing_refuses_what_cannot_be_expressed() -> None:
    verifier = source(SECRET)
    with pytest.raises(SchemeError, match="need an expiry"):
        sign(verifier, "/a.jpg")
    with pytest.raises(SchemeError, match="cannot carry client_ip"):
        sign(verifier, "/a.jpg", expires=NOW, client_ip="203.0.113.5")
    with pytest.raises(SchemeError, match="already carries 'verify'"):
        sign(verifier, "/a.jpg?verify=1", expires=NOW)
    with pytest.raises(SchemeError, match="too early"):
        sign(verifier, "/a.jpg", expires=LIFETIME - 1)
