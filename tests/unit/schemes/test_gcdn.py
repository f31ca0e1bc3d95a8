"""Scheme ``gcdn``: the shared contract (both forms), strict parsing, prefix scope, signing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any, ClassVar

import pytest

from sidecar import schemes
from sidecar.core.verdict import Reason
from sidecar.errors import SchemeError
from sidecar.schemes.base import KeyKind, KeyMaterial, SourceKey, SourceScheme
from tests.support.scheme_contract import (
    LIFETIME,
    NOW,
    Presented,
    SchemeContract,
    build_source,
    request_uri,
    sign,
    verify,
)

ORIGIN = "https://image.example.com"
KEY_TEXT = "nZtRohdNF9m3cKM24IcK4w=="  # Google's sample key (published, not a secret)
KEY = base64.urlsafe_b64decode(KEY_TEXT)
FILE = "/books/database-internals.jpg"


def material(key_id: str = "k1", text: str = KEY_TEXT) -> KeyMaterial:
    return KeyMaterial(key_id, secret=text.encode())


def source(*keys: KeyMaterial, prefix: str = "/books/") -> SourceScheme:
    return build_source("gcdn", keys or (material(),), prefix=prefix,
                        settings={"public_origin": ORIGIN})  # fmt: skip


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def hmac_b64(string: str, key: bytes = KEY) -> str:
    return b64(hmac.new(key, string.encode(), hashlib.sha1).digest())


def plain(uri: str, expires: int = NOW + 60, key_name: str = "k1") -> str:
    """``uri`` signed here, from the format's definition (not by the scheme)."""
    head = f"{uri}{'&' if '?' in uri else '?'}Expires={expires}&KeyName={key_name}"
    return f"{head}&Signature={hmac_b64(ORIGIN + head)}"


def prefixed(uri: str, prefix: str, expires: int = NOW + 60) -> str:
    """``uri`` with a URLPrefix grant for ``prefix`` (any text), signed here."""
    policy = f"URLPrefix={b64(prefix.encode())}&Expires={expires}&KeyName=k1"
    return f"{uri}{'&' if '?' in uri else '?'}{policy}&Signature={hmac_b64(policy)}"


def reason(uri: str, now: float = NOW, verifier: SourceScheme | None = None) -> Reason:
    return verify(verifier or source(), uri, now).reason


# --- the contract ---------------------------------------------------------------------------


class TestGcdn(SchemeContract):
    scheme_name = "gcdn"
    settings: ClassVar[dict[str, str]] = {"public_origin": ORIGIN}
    unsigned_url = f"{ORIGIN}{FILE}?w=400&h=600&fit=crop"
    signature_param = "Signature"
    bad_signature_values = (
        "",
        "abc",
        "CRFqQnVfFyiUyR63OQf-HRUpIwc",  # unpadded: Google's base64url keeps '='
        "CRFqQnVfFyiUyR63OQf+HRUpIwc=",  # the standard alphabet
        "CRFqQnVfFyiUyR63OQf/HRUpIwc=",
        "CRFqQnVfFyiUyR63OQf-HRUpIwd=",  # non-zero unused bits
        "CRFqQnVfFyiUyR63OQf-HRUpIwc==",
        "CRFqQnVfFyiUyR63OQf-HRUpIw==",  # 19 bytes
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",  # 32 bytes
        "%43RFqQnVfFyiUyR63OQf-HRUpIwc=",
        "CRFqQnVfFyiUyR63OQf-HRUpIwc%3D",
    )

    def key_material(self, key_id: str) -> KeyMaterial:
        return material(key_id, b64(secrets.token_bytes(16)))


class TestGcdnUrlPrefix(TestGcdn):
    """The same contract for URLPrefix grants (the prefix: the file itself). A prefix
    grant covers any query, by Google's definition, so query changes still verify."""

    query_tampered_reason = Reason.OK

    def grant(self, expires: int) -> dict[str, Any]:
        return {"expires": expires, "prefix": FILE}

    def sign(self, verifier: SourceScheme, *, expires: int = NOW + LIFETIME) -> Presented:
        signed = super().sign(verifier, expires=expires)
        assert "&URLPrefix=" in signed.uri
        return signed

    def test_expired_and_tampered_is_invalid_not_expired(self) -> None:
        # The signed part here is URLPrefix/Expires/KeyName: tamper with the expiry.
        verifier = self.single()
        signed = self.sign(verifier, expires=NOW - 100)
        tampered = signed.uri.replace(f"Expires={NOW - 100}", f"Expires={NOW + 100}")
        assert self.verify(verifier, self.with_uri(signed, tampered)).reason is Reason.INVALID


# --- strict parsing ------------------------------------------------------------------------


def test_the_helpers_sign_what_the_scheme_signs() -> None:
    assert sign(source(), ORIGIN + FILE, expires=NOW + 60) == ORIGIN + plain(FILE)
    assert reason(plain(FILE)) is Reason.OK
    assert reason(prefixed(FILE, ORIGIN + "/books/")) is Reason.OK


@pytest.mark.parametrize(
    "uri",
    [
        f"{FILE}?Expires=1&Expires={NOW + 60}&KeyName=k1&Signature=x",
        f"{FILE}?KeyName=k1&Expires={NOW + 60}&KeyName=k1&Signature=x",
        f"{FILE}?Signature=x&Expires={NOW + 60}&KeyName=k1&Signature=x",
        f"{FILE}?URLPrefix=x&URLPrefix=x&Expires={NOW + 60}&KeyName=k1&Signature=x",
        f"{FILE}?%45xpires=1&Expires={NOW + 60}&KeyName=k1&Signature=x",  # decoded name counts
    ],
)
def test_duplicated_signing_parameters_are_non_canonical(uri: str) -> None:
    assert reason(uri) is Reason.NON_CANONICAL


def test_without_signature_is_missing() -> None:
    assert reason(FILE) is Reason.MISSING
    assert reason(f"{FILE}?Expires={NOW + 60}&KeyName=k1") is Reason.MISSING


def _moved(uri: str) -> list[str]:
    path, _, query = uri.partition("?")
    pairs = query.split("&")
    names = [pair.partition("=")[0] for pair in pairs]
    expires, key_name = names.index("Expires"), names.index("KeyName")
    swapped = list(pairs)
    swapped[expires], swapped[key_name] = pairs[key_name], pairs[expires]
    variants = [
        pairs[-1:] + pairs[:-1],  # Signature not last
        [*pairs[:-1], "w=1", *pairs[-1:]],
        swapped,  # KeyName before Expires
        pairs[:expires] + pairs[expires + 1 :],  # no Expires
        pairs[:key_name] + pairs[key_name + 1 :],  # no KeyName
        [*pairs[:-1], "%53ignature=" + pairs[-1][10:]],  # an encoded name
        [*pairs[:-1], "signature=x", pairs[-1]],
    ]
    return [f"{path}?{'&'.join(variant)}" for variant in variants]


@pytest.mark.parametrize("uri", _moved(plain(FILE)) + _moved(prefixed(FILE, ORIGIN + "/books/")))
def test_signing_parameters_out_of_place_are_malformed(uri: str) -> None:
    assert reason(uri) is Reason.MALFORMED


def test_url_prefix_not_next_to_expires_is_malformed() -> None:
    signed = prefixed(FILE, ORIGIN + "/books/")
    path, _, query = signed.partition("?")
    first, _, rest = query.partition("&")
    assert reason(f"{path}?{first}&w=1&{rest}") is Reason.MALFORMED


@pytest.mark.parametrize("expires", ["0" + str(NOW + 60), "+1900000060", "1.9e9", "", "-1"])
def test_expires_not_in_its_one_spelling_is_malformed(expires: str) -> None:
    uri = plain(FILE).replace(f"Expires={NOW + 60}", f"Expires={expires}")
    assert reason(uri) is Reason.MALFORMED


def test_unknown_key_name() -> None:
    assert reason(plain(FILE, key_name="k2")) is Reason.UNKNOWN_KEY
    assert reason(plain(FILE, key_name="K1")) is Reason.UNKNOWN_KEY  # names are exact


@pytest.mark.parametrize(
    "encoded", ["aHR0cHM6Ly9pbWFnZS5leGFtcGxlLmNvbS9ib29rcy8", "aHR0c+M6", "%61HR0", "__8="]
)
def test_url_prefix_badly_encoded_is_malformed(encoded: str) -> None:
    # Unpadded, standard alphabet, percent-encoded, not UTF-8 ("__8=" is ff ff): refused
    # before any key is used.
    policy = f"URLPrefix={encoded}&Expires={NOW + 60}&KeyName=k1"
    assert reason(f"{FILE}?{policy}&Signature={hmac_b64(policy)}") is Reason.MALFORMED


def test_expiry_is_checked_after_the_signature_and_the_prefix() -> None:
    assert reason(plain(FILE, expires=NOW - 1)) is Reason.EXPIRED
    assert reason(prefixed(FILE, ORIGIN + "/books/", NOW - 1)) is Reason.EXPIRED
    assert reason(prefixed(FILE, ORIGIN + "/", NOW - 1)) is Reason.INVALID


# --- the prefix's scope ------------------------------------------------------------------


def test_a_prefix_opens_only_urls_that_start_with_it() -> None:
    grant = ORIGIN + "/books/"
    assert reason(prefixed("/books/a/b/c.png?any=query", grant)) is Reason.OK
    for elsewhere in ("/secret/x.png", "/books-other/x.png", "/book/x.png", "/"):
        assert reason(prefixed(elsewhere, grant)) is Reason.INVALID, elsewhere
    exact = ORIGIN + "/books/x.png"
    assert reason(prefixed("/books/x.png.bak", exact)) is Reason.OK  # Google: a string prefix
    assert reason(prefixed("/books/y.png", exact)) is Reason.INVALID


@pytest.mark.parametrize(
    "prefix",
    [
        ORIGIN + "/",  # wider than the source
        ORIGIN + "/books",  # no segment boundary: would cover /books-other/
        ORIGIN,
        "http://image.example.com/books/",  # another scheme
        "https://evil.example.com/books/",
        "https://IMAGE.example.com/books/",  # not the origin's one spelling
        "https://image.example.com:443/books/",
        ORIGIN + "/books/?w=1",  # a query
        ORIGIN + "/books/../secret/",  # not canonical
        ORIGIN + "/books/%2e%2e/secret/",
        ORIGIN + "/books//",
        "/books/",  # not a full URL
        "ftp://image.example.com/books/",
        "https://user@image.example.com/books/",
    ],
)
def test_a_genuine_prefix_reaching_outside_the_source_is_invalid(prefix: str) -> None:
    assert reason(prefixed(FILE, prefix)) is Reason.INVALID


def test_a_source_at_the_root_accepts_any_prefix_of_its_origin() -> None:
    root = source(prefix="/")
    assert reason(prefixed("/secret/x.png", ORIGIN + "/", NOW + 60), verifier=root) is Reason.OK
    assert reason(prefixed("/a.png", ORIGIN + "/a"), verifier=root) is Reason.OK


# --- signing -------------------------------------------------------------------------------


def test_sign_url_prefix_as_path_or_full_url() -> None:
    verifier = source()
    by_path = sign(verifier, ORIGIN + FILE, expires=NOW + 60, prefix="/books/")
    by_url = sign(verifier, FILE, expires=NOW + 60, prefix=ORIGIN + "/books/")
    assert by_path == by_url == ORIGIN + prefixed(FILE, ORIGIN + "/books/")


@pytest.mark.parametrize(
    ("grant", "message"),
    [
        ({"not_before": NOW}, "cannot carry not_before"),
        ({"client_ip": "203.0.113.5"}, "cannot carry client_ip"),
        ({"resource": ORIGIN + "/books/*"}, "cannot carry resource"),
        ({"expires": None}, "need an expiry"),
        ({"expires": -5}, "need an expiry"),
        ({"prefix": "/"}, "path_prefix /books/"),
        ({"prefix": "/books"}, "path_prefix /books/"),
        ({"prefix": "https://evil.example.com/books/"}, "public_origin"),
        ({"prefix": "/books/?w=1"}, "query"),
        ({"prefix": "/books/./"}, "not canonical"),
        ({"prefix": "/books/other/"}, "not under the grant's URL prefix"),
    ],
)
def test_sign_refuses_what_it_cannot_express(grant: dict[str, Any], message: str) -> None:
    with pytest.raises(SchemeError, match=message):
        sign(source(), ORIGIN + FILE, **{"expires": NOW + 60, **grant})


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/books/x.png",
        "http://image.example.com/books/x.png",
        ORIGIN + "/books/x.png?Expires=1",
        ORIGIN + "/books/x.png?KeyName=k1",
        ORIGIN + "/books/x.png?a=1&Signature=x",
        ORIGIN + "/books/x.png?URLPrefix=x",
    ],
)
def test_sign_refuses_urls_it_cannot_sign(url: str) -> None:
    with pytest.raises(SchemeError):
        sign(source(), url, expires=NOW + 60)


def test_signed_urls_are_absolute_and_drop_a_bare_question_mark() -> None:
    signed = sign(source(), "/books/x.png?", expires=NOW + 60)
    assert signed == ORIGIN + plain("/books/x.png")
    assert reason(request_uri(signed)) is Reason.OK


def test_newest_key_signs_and_rotated_keys_verify() -> None:
    new = material("new", b64(b"n" * 16))
    verifier = source(new, material("old"))
    assert "KeyName=new&" in sign(verifier, ORIGIN + FILE, expires=NOW + 60)
    assert verify(verifier, plain(FILE, key_name="old"), NOW).key_id == "old"


# --- keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "nZtRohdNF9m3cKM24IcK4w",  # unpadded
        "nZtRohdNF9m3cKM24IcK4w=",
        "nZtRohdNF9m3cKM24IcK4x==",  # non-zero unused bits
        "+ZtRohdNF9m3cKM24IcK4w==",  # standard alphabet
        "nZtRohdNF9m3cKM24IcK",  # 15 bytes
        b64(bytes(32)),
        " nZtRohdNF9m3cKM24IcK4w==",
        "nZtRohdNF9m3cKM24IcK4w==\n\n",
        "nZtRohdNF9m3cKM24IcK4w==é",
    ],
)
def test_keys_must_be_16_bytes_of_padded_base64url(text: str) -> None:
    with pytest.raises(SchemeError) as raised:
        source(material("k1", text))
    assert "16-byte key" in str(raised.value)
    assert text.strip() not in str(raised.value)  # never the secret


@pytest.mark.parametrize("key_id", ["my key", "k/1", "k.1", "ké", "k" * 64])
def test_key_names_follow_googles_rule(key_id: str) -> None:
    with pytest.raises(SchemeError, match="KeyName"):
        source(material(key_id))


def test_public_origin_is_required() -> None:
    with pytest.raises(SchemeError, match="public_origin"):
        build_source("gcdn", [material()], settings={"public_origin": None})


def test_new_key_is_16_random_bytes_as_google_shows_them() -> None:
    scheme = schemes.get("gcdn")
    assert scheme is not None and scheme.key_types == ("gcdn",)
    first, second = scheme.new_key("gcdn").secret, scheme.new_key("gcdn").secret
    assert first is not None and second is not None and first != second
    assert len(first) == 24 and first.endswith("==")
    assert len(base64.urlsafe_b64decode(first)) == 16
    assert source(material("k1", first)).key_material() == (
        SourceKey("k1", KeyKind.SHARED_SECRET, first.encode()),
    )
