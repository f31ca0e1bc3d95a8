"""Scheme ``md5-token``: the shared contract, the reference value and vectors."""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from sidecar import schemes
from sidecar.core.verdict import Reason
from sidecar.errors import SchemeError, SigningError
from sidecar.schemes.base import KeyMaterial, SourceScheme, SourceSpec
from sidecar.schemes.md5_token import Md5TokenSettings
from tests.support.scheme_contract import SchemeContract, build_source, request_uri, sign
from tests.support.scheme_contract import verify as verify_verdict

VECTORS = json.loads((Path(__file__).parent / "vectors" / "md5_token.json").read_text("utf-8"))
REFERENCE_URL = "/books/database-internals.jpg?w=400&h=600&fit=crop"
REFERENCE_SIGNATURE = "7d0d58f62c945d0ca08269205228bbe7"
_fresh = itertools.count()


def verifier_for(*tokens: str) -> SourceScheme:
    keys = [KeyMaterial(f"k{i}", secret=token.encode()) for i, token in enumerate(tokens)]
    return build_source("md5-token", keys)


def verify(verifier: SourceScheme, uri: str, now: float = 0) -> Reason:
    return verify_verdict(verifier, uri, now).reason


class TestMd5Token(SchemeContract):
    scheme_name = "md5-token"
    signature_param = "s"
    bad_signature_values = (
        "",
        "0" * 33,
        "g" * 32,
        "7d0d58f6-c945d0ca08269205228bbe7",
        "0x" + "0" * 30,
        "%37d0d58f62c945d0ca08269205228bbe",  # percent-encoded hex is not hex
        "+" * 32,
        "7d0d58f62c945d0ca08269205228bbe7" * 2,
    )

    def key_material(self, key_id: str) -> KeyMaterial:
        return KeyMaterial(key_id, secret=f"token-{next(_fresh)}".encode())


# --- the reference value and known answers ----------------------------------------------


def test_spec_reference_value_signs() -> None:
    signed = sign(verifier_for("wakanda123@"), REFERENCE_URL)
    assert signed == f"{REFERENCE_URL}&s={REFERENCE_SIGNATURE}"


def test_spec_reference_value_verifies() -> None:
    verifier = verifier_for("wakanda123@")
    assert verify(verifier, f"{REFERENCE_URL}&s={REFERENCE_SIGNATURE}") is Reason.OK
    assert verify(verifier_for("wakanda123"), f"{REFERENCE_URL}&s={REFERENCE_SIGNATURE}") is (
        Reason.INVALID
    )


def test_vectors_file_is_substantial() -> None:
    assert VECTORS["scheme"] == "md5-token"
    assert len(VECTORS["vectors"]) >= 8


def test_vectors_agree_with_the_formula() -> None:
    # Guards the vectors file itself against a bad edit: the md5-token formula.
    for vector in VECTORS["vectors"]:
        signed = vector["expected_signed_uri"]
        unsigned_uri, _, digest = request_uri(signed).rpartition("&s=")
        if not unsigned_uri:
            unsigned_uri, _, digest = request_uri(signed).rpartition("?s=")
        expected = hashlib.md5((unsigned_uri + vector["token"]).encode()).hexdigest()
        assert digest == expected, vector["description"]


def _vector_ids(vector: dict[str, Any]) -> str:
    return str(vector["description"]).replace(" ", "-")


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=_vector_ids)
def test_vector_sign(vector: dict[str, Any]) -> None:
    verifier = verifier_for(vector["token"])
    signed = sign(verifier, vector["uri_unsigned"], expires=vector.get("expires"))
    assert signed == vector["expected_signed_uri"]


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=_vector_ids)
def test_vector_verify(vector: dict[str, Any]) -> None:
    uri = request_uri(vector["expected_signed_uri"])
    verifier = verifier_for(vector["token"])
    assert verify(verifier, uri, now=1_700_000_000) is Reason.OK
    assert verify(verifier_for(vector["token"] + "x"), uri, now=1_700_000_000) is Reason.INVALID


# --- md5-token specifics ----------------------------------------------------------------


def test_sign_without_expiry_carries_none() -> None:
    verifier = verifier_for("t")
    signed = sign(verifier, "/books/a.jpg")
    assert "expires=" not in signed
    verdict = verify_verdict(verifier, signed, 4_000_000_000)
    assert (verdict.reason, verdict.expires_at) == (Reason.OK, None)


def test_sign_bare_question_mark_verifies() -> None:
    verifier = verifier_for("t")
    signed = sign(verifier, "/books/a.jpg?")
    assert signed.count("?") == 1
    assert verify(verifier, signed) is Reason.OK


def test_newest_key_signs() -> None:
    # The first configured key is the newest: it signs, the older ones only verify.
    signed = sign(verifier_for("new", "old"), "/a.jpg")
    assert signed == f"/a.jpg?s={hashlib.md5(b'/a.jpgnew').hexdigest()}"


def test_uppercase_hex_signature_verifies() -> None:
    # docs/schemes/md5-token.md: signers in Java, .NET and Go often print uppercase hex.
    verifier = verifier_for("wakanda123@")
    uri = f"{REFERENCE_URL}&s={REFERENCE_SIGNATURE.upper()}"
    assert verify(verifier, uri) is Reason.OK


@pytest.mark.parametrize(
    "digest",
    [
        "7D0d58f62c945d0ca08269205228bbe7",  # one letter upper
        "7d0d58f62c945d0ca08269205228bbE7",
        "7D0D58F62C945D0CA08269205228BBe7",  # one letter lower
    ],
)
def test_mixed_case_hex_signature_is_malformed(digest: str) -> None:
    # Two spellings (all lower, all upper) and no more: mixed case is not a signer's output.
    assert digest.lower() == REFERENCE_SIGNATURE
    uri = f"{REFERENCE_URL}&s={digest}"
    assert verify(verifier_for("wakanda123@"), uri) is Reason.MALFORMED


def test_expires_with_leading_zeros_is_malformed() -> None:
    verifier = verifier_for("wakanda123@")
    signed = sign(verifier, "/books/a.jpg", expires=1_900_000_000)
    respelled = signed.replace("expires=1900000000", "expires=01900000000")
    assert verify(verifier, signed) is Reason.OK
    assert verify(verifier, respelled) is Reason.MALFORMED


@pytest.mark.parametrize(
    "url",
    [
        "/books/../a.jpg",
        "/books//a.jpg",
        "/books/a%2Fb.jpg",
        "/books/a.jpg;x",
        "/books/a.jpg#x",
        "/books/a%G1.jpg",
        "/books/a\x00.jpg",
        "books/a.jpg",
        "ftp://example.com/a.jpg",
        "https://example.com",
        "https:///a.jpg",
        "",
    ],
)
def test_sign_refuses_non_canonical(url: str) -> None:
    with pytest.raises(SigningError):
        sign(verifier_for("t"), url)


@pytest.mark.parametrize(
    "url",
    [
        "/books/a.jpg?s=abc",
        "/books/a.jpg?w=1&s=",
        "/books/a.jpg?expires=123",
        "/books/a.jpg?%73=1",
        "/books/a.jpg?%65xpires=1&w=2",
    ],
)
def test_sign_refuses_already_signed(url: str) -> None:
    with pytest.raises(SchemeError):
        sign(verifier_for("t"), url)


def test_sign_absolute_url_keeps_origin() -> None:
    verifier = verifier_for("t")
    signed = sign(verifier, "https://img.example.com:8443/books/a.jpg?w=1", expires=2_000_000_000)
    origin = "https://img.example.com:8443"
    assert signed.startswith(origin + "/books/a.jpg?w=1&expires=2000000000&s=")
    # The origin is not part of the signed string: only path and query are.
    digest = hashlib.md5(b"/books/a.jpg?w=1&expires=2000000000t").hexdigest()
    assert signed == f"{origin}/books/a.jpg?w=1&expires=2000000000&s={digest}"
    assert verify(verifier, signed.removeprefix(origin), now=1_999_999_999) is Reason.OK


def test_build_refuses_key_without_secret() -> None:
    scheme = schemes.get("md5-token")
    assert scheme is not None
    with pytest.raises(SchemeError, match="k2"):
        keys = (KeyMaterial("k1", secret=b"x"), KeyMaterial("k2"))
        scheme.build(SourceSpec("books", "/books/", keys, Md5TokenSettings()))


def test_scheme_defaults() -> None:
    scheme = schemes.get("md5-token")
    assert scheme is not None
    assert scheme.default_deny_status == 401
    assert scheme.key_fields == frozenset({"secret"})
    assert "md5-token" in schemes.names()


def test_repr_hides_tokens() -> None:
    verifier = verifier_for("super-secret-token-value")
    assert "super-secret-token-value" not in repr(verifier)
    assert "super-secret-token-value" not in repr(KeyMaterial("k", secret=b"super-secret"))
