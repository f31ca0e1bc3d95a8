"""Scheme ``imgproxy``: the shared contract, imgproxy's documented and library-made URLs,
truncated signatures, key and salt pairs, the expiry option and every other spelling."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from imgproxy import ImgProxy  # type: ignore[import-untyped]  # no stubs, no py.typed

from sidecar.core.verdict import Reason
from sidecar.errors import SchemeError
from sidecar.schemes import imgproxy
from sidecar.schemes.base import KeyMaterial, SourceScheme
from tests.support.scheme_contract import (
    LIFETIME,
    NOW,
    Carrier,
    Presented,
    SchemeContract,
    build_source,
    parse,
    sign,
)
from tests.support.scheme_contract import verify as verify_verdict

VECTORS = json.loads((Path(__file__).parent / "vectors" / "imgproxy.json").read_text("utf-8"))
PREFIX = "/img/"
_fresh = itertools.count()


def pair(key_id: str = "k1", key: str | None = None, salt: str | None = None) -> KeyMaterial:
    key = key or secrets.token_hex(32)
    return KeyMaterial(key_id, secret=key.encode(), salt=(salt or secrets.token_hex(16)).encode())


def source(*keys: KeyMaterial, size: int = 32, prefix: str = PREFIX) -> SourceScheme:
    return build_source("imgproxy", keys, prefix=prefix, settings={"signature_size": size})


def reason(verifier: SourceScheme, uri: str, now: float = NOW) -> Reason:
    return verify_verdict(verifier, uri, now).reason


class TestImgproxy(SchemeContract):
    scheme_name = "imgproxy"
    path_prefix = PREFIX
    carrier = Carrier.PATH_SEGMENT
    signature_param = "signature"  # a label: the signature is a path segment
    unsigned_url = "/img/rs:fill:300:400:0/g:sm/plain/books/database-internals.jpg@webp"
    bad_signature_values = (
        "x",
        "A" * 42,
        "A" * 44,
        "A" * 43 + "=",  # padded
        "A" * 42 + "B",  # unused bits set: a second spelling
        "+" * 43,  # the standard alphabet
        "A" * 42 + "%41",
        "=" * 43,
        "A" * 86,
    )

    def key_material(self, key_id: str) -> KeyMaterial:
        return pair(key_id)

    def test_signing_keeps_the_unsigned_url(self) -> None:
        # Signing adds the signature and, for an expiry, imgproxy's exp: option first.
        verifier = self.single()
        signed = self.sign(verifier)
        rest = self.unsigned_url[len(PREFIX) :]
        expected = f"{PREFIX}{self.signature(signed)}/exp:{NOW + LIFETIME}/{rest}"
        assert signed.uri == expected

    # imgproxy signs the path alone: a query is refused rather than left unsigned.

    def test_tampered_query_value(self) -> None:
        verifier = self.single()
        signed = self.sign(verifier)
        tampered = self.with_uri(signed, signed.uri + "?w=1")
        assert self.verify(verifier, tampered).reason is Reason.MALFORMED

    def test_added_param(self) -> None:
        verifier = self.single()
        signed = self.sign(verifier)
        for query in ("?", "?v=3", "?a=1&b=2"):
            tampered = self.with_uri(signed, signed.uri + query)
            assert self.verify(verifier, tampered).reason is Reason.MALFORMED, query

    def test_removed_param(self) -> None:
        verifier = self.single()
        signed = self.sign(verifier)
        options = signed.uri.split("/")
        removed = "/".join(options[:4] + options[5:])  # g:sm dropped
        assert self.verify(verifier, self.with_uri(signed, removed)).reason is Reason.INVALID

    def test_expired_and_tampered_is_invalid_not_expired(self) -> None:
        verifier = self.single()
        signed = self.sign(verifier, expires=NOW - 100)
        forged = self.with_uri(signed, signed.uri.replace("rs:fill:300", "rs:fill:301"))
        assert self.verify(verifier, forged).reason is Reason.INVALID
        later = self.with_uri(signed, signed.uri.replace(f"exp:{NOW - 100}", f"exp:{NOW + 99}"))
        assert self.verify(verifier, later).reason is Reason.INVALID


# --- known answers: imgproxy's docs, the imgproxy package, openssl -------------------------


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["description"])
def test_vectors_verify_and_are_signed_byte_for_byte(vector: dict[str, Any]) -> None:
    key = KeyMaterial("v", secret=vector["key"].encode(), salt=vector["salt"].encode())
    verifier = source(key, size=vector["signature_size"])
    uri = PREFIX.rstrip("/") + vector["expected"]
    verdict = verify_verdict(verifier, uri)
    assert (verdict.reason, verdict.key_id) == (Reason.OK, "v")
    unsigned = PREFIX + vector["expected"].split("/", 2)[2]
    assert sign(verifier, unsigned) == uri


def test_vectors_name_their_generators() -> None:
    generators = {vector["generator"] for vector in VECTORS["vectors"]}
    assert any("documentation" in g for g in generators)
    assert any("imgproxy" in g and "PyPI" in g for g in generators)
    assert any("openssl" in g for g in generators)
    assert {vector["signature_size"] for vector in VECTORS["vectors"]} >= {1, 8, 16, 31, 32}


def test_the_imgproxy_package_verifies_here() -> None:
    key, salt = secrets.token_hex(32), secrets.token_hex(32)
    url = ImgProxy("https://example.com/books/a.jpg", key=key, salt=salt, width=90)("q:70")
    verifier = source(pair("k", key, salt))
    assert reason(verifier, "/img" + url) is Reason.OK
    assert reason(verifier, "/img" + url.replace("q:70", "q:71")) is Reason.INVALID


# --- signature_size: truncated HMACs, each size its one length ------------------------------


@pytest.mark.parametrize("size", [1, 2, 3, 8, 16, 31, 32])
def test_each_signature_size_round_trips_and_refuses_other_lengths(size: int) -> None:
    key = pair()
    verifier, full = source(key, size=size), source(key)
    signed = sign(verifier, "/img/rs:fit:10:10/plain/a.jpg")
    presented = signed.split("/")[2]
    assert len(presented) == imgproxy.expected_length(size)
    assert reason(verifier, signed) is Reason.OK
    digest = hmac.digest(bytes.fromhex(key.secret.decode()),  # type: ignore[union-attr]
                         bytes.fromhex(key.salt.decode()) + b"/rs:fit:10:10/plain/a.jpg",  # type: ignore[union-attr]
                         hashlib.sha256)  # fmt: skip
    assert presented == base64.urlsafe_b64encode(digest[:size]).rstrip(b"=").decode()
    if size < 32:  # a truncated signature is malformed where the full one is expected
        assert reason(full, signed) is Reason.MALFORMED
        longer = base64.urlsafe_b64encode(digest[: size + 1]).rstrip(b"=").decode()
        assert reason(verifier, signed.replace(presented, longer)) is Reason.MALFORMED


@pytest.mark.parametrize("size", [0, 33, -1])
def test_signature_size_out_of_range_is_refused(size: int) -> None:
    with pytest.raises(SchemeError, match="signature_size: must be 1 to 32"):
        source(pair(), size=size)


# --- keys: key and salt pairs, hex ----------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "salt", "problem"),
    [
        ("not-hex", "abcd", "needs a key as hex"),
        ("abc", "abcd", "needs a key as hex"),  # odd length
        ("ab cd", "abcd", "needs a key as hex"),
        ("abcd", "xyz", "needs a salt as hex"),
    ],
)
def test_keys_and_salts_must_be_hex(key: str, salt: str, problem: str) -> None:
    with pytest.raises(SchemeError, match=problem):
        source(KeyMaterial("k", secret=key.encode(), salt=salt.encode()))


def test_a_key_without_its_salt_is_refused() -> None:
    with pytest.raises(SchemeError, match="key 'k': needs a salt as hex"):
        source(KeyMaterial("k", secret=b"abcd"))


def test_a_key_matches_only_with_its_own_salt() -> None:
    first, second = pair("first"), pair("second")
    swapped = KeyMaterial("swapped", secret=first.secret, salt=second.salt)
    signed = sign(source(first), "/img/q:80/plain/a.jpg")
    assert reason(source(swapped, second), signed) is Reason.INVALID
    assert verify_verdict(source(second, first), signed).key_id == "first"


def test_key_material_shows_the_key_as_configured_never_the_salt() -> None:
    key = pair("k", "AB" * 16, "cd" * 16)
    shown = source(key).key_material()
    assert [(k.id, k.material) for k in shown] == [("k", b"AB" * 16)]


def test_new_keys_are_hex_imgproxy_reads() -> None:
    made = imgproxy.SCHEME.new_key("imgproxy").secret
    assert made is not None and imgproxy.from_hex(made.encode()) is not None
    assert len(made) == 128


# --- the URL's other parts: unsigned forms, queries, expiry options, the prefix ------------


@pytest.mark.parametrize(
    "uri",
    [
        "/img/insecure/rs:fit:10:10/plain/a.jpg",
        "/img/_/rs:fit:10:10/plain/a.jpg",
        "/img/rs:fit:10:10/plain/a.jpg",  # an option where the signature belongs
        "/img/a.jpg",  # nothing after the signature's place
    ],
)
def test_unsigned_forms_are_missing(uri: str) -> None:
    assert reason(source(pair()), uri) is Reason.MISSING


def test_nothing_after_the_signature_is_malformed() -> None:
    verifier = source(pair())
    presented = sign(verifier, "/img/a.jpg").split("/")[2]
    assert reason(verifier, f"/img/{presented}/") is Reason.MALFORMED


@pytest.mark.parametrize(
    "options",
    ["exp:1900000100/exp:1900000100", "exp:1900000100/expires:1900000100", "exp:01900000100",
     "exp:", "exp:19e8", "expires:-1"],
)  # fmt: skip
def test_expiry_options_have_one_spelling(options: str) -> None:
    verifier = source(pair())
    signed = sign(verifier, f"/img/{options}/rs:fit:10:10/plain/a.jpg")
    assert reason(verifier, signed) is Reason.MALFORMED


def test_an_expires_option_is_read_like_exp() -> None:
    verifier = source(pair())
    signed = sign(verifier, f"/img/rs:fit:10:10/expires:{NOW + 5}/plain/a.jpg")
    verdict = verify_verdict(verifier, signed)
    assert (verdict.reason, verdict.expires_at) == (Reason.OK, NOW + 5)
    assert reason(verifier, signed, NOW + 5) is Reason.EXPIRED


def test_an_exp_inside_the_source_is_not_an_option() -> None:
    # The options end at the first segment without ":": an exp: in the source is a path.
    verifier = source(pair())
    signed = sign(verifier, "/img/rs:fit:10:10/plain/exp:1/a.jpg")
    verdict = verify_verdict(verifier, signed)
    assert (verdict.reason, verdict.key_id, verdict.expires_at, verdict.shareable) == (
        Reason.OK,
        "k1",
        None,
        True,
    )


def test_signing_refuses_what_could_never_verify() -> None:
    verifier = source(pair())
    for url, problem in [
        ("/img/a.jpg?w=1", "path alone"),
        ("/other/a.jpg", "not under the source's prefix"),
        ("/img/", "nothing to sign"),
        ("/img/insecure/a.jpg", "remove 'insecure/'"),
    ]:
        with pytest.raises(SchemeError, match=problem):
            sign(verifier, url)
    with pytest.raises(SchemeError, match="already carries an exp"):
        sign(verifier, "/img/exp:5/a.jpg", expires=NOW + 10)
    with pytest.raises(SchemeError, match="client_ip"):
        sign(verifier, "/img/a.jpg", client_ip="203.0.113.5")


def test_a_re_spelled_prefix_is_malformed() -> None:
    verifier = source(pair())
    signed = sign(verifier, "/img/rs:fit:10:10/plain/a.jpg")
    assert reason(verifier, signed.replace("/img/", "/im%67/", 1)) is Reason.MALFORMED


def test_explain_names_the_signed_text_and_lengths_never_the_signature() -> None:
    key = pair()
    verifier = source(key, size=16)
    signed = sign(verifier, "/img/rs:fit:10:10/plain/a.jpg")
    explanation = verifier.explain(parse(signed + "x"))  # type: ignore[attr-defined]
    assert explanation == {
        "signed_text": "<salt>/rs:fit:10:10/plain/a.jpgx",
        "signature_characters": 22,
        "expected_characters": 22,
        "signature_bytes": 16,
        "signature_size": 16,
        "query_refused": False,
        "keys_tried": 1,
    }
    expected = sign(verifier, "/img/rs:fit:10:10/plain/a.jpgx").split("/")[2]
    assert expected not in json.dumps(explanation)
    short = verifier.explain(parse("/img/abc/a.jpg?x=1"))  # type: ignore[attr-defined]
    assert (short["signature_bytes"], short["query_refused"]) == (2, True)


def test_a_cookie_grant_presented_is_not_read() -> None:
    # imgproxy has no cookie form: a Cookie header never grants.
    verifier = source(pair())
    uri = "/img/rs:fit:10:10/plain/a.jpg"
    assert verify_verdict(verifier, uri, cookies="signature=x").reason is Reason.MISSING
    assert Presented(uri).cookies is None
