"""Scheme ``gcdn``: signed cookies (``Cloud-CDN-Cookie``, docs/cookies.md). The shared contract
with the cookie carrier, Google's published known answers (golang-samples
``cdn/signedcookies/sign_cookie_test.go``) byte for byte, openssl as a second signer,
each bad cookie, and the URL-first order."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import subprocess
from typing import Any, ClassVar

import pytest

from sidecar.core.verdict import Reason
from sidecar.errors import SchemeError
from sidecar.policy.signing import sign_request
from sidecar.schemes.base import Grant, KeyMaterial, SourceScheme
from tests.support.scheme_contract import (
    NOW,
    Carrier,
    Presented,
    SchemeContract,
    build_source,
    verify,
)

ORIGIN = "https://image.example.com"
KEY_TEXT = "nZtRohdNF9m3cKM24IcK4w=="  # Google's sample key (published, not a secret)
KEY = base64.urlsafe_b64decode(KEY_TEXT)
FILE = "/books/database-internals.jpg"
COOKIE = "Cloud-CDN-Cookie"

# golang-samples cdn/signedcookies/sign_cookie_test.go: key nZtRohdNF9m3cKM24IcK4w==,
# KeyName my-key, Expires 1558131350.
GOOGLE_EXPIRES = 1558131350
GOOGLE_ANSWERS = {
    "https://media.example.com/segments/": (
        "URLPrefix=aHR0cHM6Ly9tZWRpYS5leGFtcGxlLmNvbS9zZWdtZW50cy8=:Expires=1558131350"
        ":KeyName=my-key:Signature=_qwhz38bxCKdiDqENLIx4ujrw-U="
    ),
    "https://video.example.com/manifests/123/": (
        "URLPrefix=aHR0cHM6Ly92aWRlby5leGFtcGxlLmNvbS9tYW5pZmVzdHMvMTIzLw==:Expires=1558131350"
        ":KeyName=my-key:Signature=0ZSSGg0VdRH29siXG8wiPTV5LOE="
    ),
}


def source(*, prefix: str = "/books/", origin: str = ORIGIN, key_id: str = "k1",
           accept: bool = True) -> SourceScheme:  # fmt: skip
    return build_source("gcdn", [KeyMaterial(key_id, secret=KEY_TEXT.encode())], prefix=prefix,
                        settings={"public_origin": origin, "accept_cookies": accept})  # fmt: skip


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def cookie_value(prefix: str, expires: int = NOW + 60, key_name: str = "k1") -> str:
    """A cookie value signed here from the format's definition (not by the scheme)."""
    string = f"URLPrefix={b64(prefix.encode())}:Expires={expires}:KeyName={key_name}"
    digest = hmac.new(KEY, string.encode(), hashlib.sha1).digest()
    return f"{string}:Signature={b64(digest)}"


def header(value: str) -> str:
    return f"{COOKIE}={value}"


def signed_cookie(url: str, src: SourceScheme | None = None, **grant: Any) -> str:
    signed = (src or source()).sign(sign_request(url, Grant(cookies=True, **grant)))
    (set_cookie,) = signed.cookies
    return set_cookie


class TestGcdnCookieContract(SchemeContract):
    scheme_name = "gcdn"
    settings: ClassVar[dict[str, Any]] = {"public_origin": ORIGIN, "accept_cookies": True}
    carrier = Carrier.COOKIE
    signature_param = COOKIE
    unsigned_url = ORIGIN + "/books/database-internals.jpg?w=400&h=600&fit=crop"
    bad_signature_values = ("", "!!!!", "_qwhz38bxCKdiDqENLIx4ujrw-U",
                            "_qwhz38bxCKdiDqENLIx4ujrw-V=", "_qwhz38bxCKdiDqENLIx4ujrw+U=",
                            "AAAA")  # fmt: skip

    def key_material(self, key_id: str) -> KeyMaterial:
        return KeyMaterial(key_id, secret=b64(secrets.token_bytes(16)).encode())

    # The cookie's value holds four fields: the signature is the last one, not the whole
    # value (the contract's generic cookie carrier would replace everything).
    def signature(self, presented: Presented) -> str:
        value = (presented.cookies or "").partition("=")[2]
        return value.rpartition(":Signature=")[2]

    def with_signature(self, presented: Presented, value: str) -> Presented:
        name, _, cookie = (presented.cookies or "").partition("=")
        head = cookie.rpartition(":Signature=")[0]
        return presented._replace(cookies=f"{name}={head}:Signature={value}")

    # Overridden: the contract tampers the query, which a cookie grant does not cover
    # (that request is a genuine expired grant). The forgery here is the cookie's expiry.
    def test_expired_and_tampered_is_invalid_not_expired(self) -> None:
        verifier = self.single()
        signed = self.sign(verifier, expires=NOW - 100)
        forged = (signed.cookies or "").replace(f"Expires={NOW - 100}", f"Expires={NOW + 100}")
        assert self.verify(verifier, signed._replace(cookies=forged)).reason is Reason.INVALID
        assert self.verify(verifier, signed).reason is Reason.EXPIRED


@pytest.mark.parametrize("prefix", sorted(GOOGLE_ANSWERS))
def test_google_known_answers_byte_for_byte(prefix: str) -> None:
    origin, _, path = prefix.partition(".com")
    settings = {"public_origin": origin + ".com", "accept_cookies": True}
    key = KeyMaterial("my-key", secret=KEY_TEXT.encode())
    src = build_source("gcdn", [key], prefix=path, settings=settings)
    made = signed_cookie(prefix + "seg-1.ts", src, expires=GOOGLE_EXPIRES)
    assert made.partition(";")[0] == header(GOOGLE_ANSWERS[prefix])
    answer = verify(src, path + "seg-1.ts?q=1", GOOGLE_EXPIRES - 1,
                    cookies=header(GOOGLE_ANSWERS[prefix]))  # fmt: skip
    assert (answer.reason, answer.key_id, answer.expires_at) == (
        Reason.OK,
        "my-key",
        GOOGLE_EXPIRES,
    )
    assert answer.shareable is False
    assert verify(src, path + "seg-1.ts", GOOGLE_EXPIRES, cookies=header(GOOGLE_ANSWERS[prefix])
                  ).reason is Reason.EXPIRED  # fmt: skip


def test_openssl_agrees() -> None:
    value = signed_cookie(ORIGIN + FILE, expires=NOW + 60).partition(";")[0]
    string, _, digest = value.partition("=")[2].rpartition(":Signature=")
    result = subprocess.run(["openssl", "dgst", "-sha1", "-mac", "HMAC", "-macopt",
                             f"hexkey:{KEY.hex()}", "-binary"], input=string.encode(),
                            capture_output=True, check=True, timeout=30)  # fmt: skip
    assert b64(result.stdout) == digest
    assert value == header(cookie_value(ORIGIN + "/books/", NOW + 60))


def test_set_cookie_attributes() -> None:
    made = signed_cookie(ORIGIN + FILE + "?w=1", expires=GOOGLE_EXPIRES, prefix="/books/")
    _, *attributes = made.split("; ")
    assert attributes == ["Path=/books/", "Expires=Fri, 17 May 2019 22:15:50 GMT", "Secure",
                          "HttpOnly", "SameSite=Lax"]  # fmt: skip
    signed = source().sign(sign_request(FILE + "?w=1", Grant(expires=NOW, cookies=True)))
    assert signed.url == ORIGIN + FILE + "?w=1"  # the URL stays unsigned


def test_sign_a_narrower_prefix_and_refuse_a_wider_one() -> None:
    made = signed_cookie(ORIGIN + "/books/a/x.png", expires=NOW + 60, prefix="/books/a/")
    assert "; Path=/books/a/;" in made
    value = made.partition(";")[0]
    assert verify(source(), "/books/a/y.png", cookies=value).reason is Reason.OK
    assert verify(source(), "/books/b/y.png", cookies=value).reason is Reason.INVALID
    for wider in ("/", "/bo", ORIGIN + "/"):
        with pytest.raises(SchemeError, match="path_prefix"):
            signed_cookie(ORIGIN + FILE, expires=NOW + 60, prefix=wider)


@pytest.mark.parametrize(
    ("cookies", "reason"),
    [
        (None, Reason.MISSING),
        ("", Reason.MISSING),
        ("session=abc; other=1", Reason.MISSING),
        (
            f"{header(cookie_value(ORIGIN + '/books/'))}; {header(cookie_value(ORIGIN + '/'))}",
            Reason.NON_CANONICAL,
        ),
        (f'{COOKIE}="{cookie_value(ORIGIN + "/books/")}"', Reason.MALFORMED),
        (f"{COOKIE}", Reason.MALFORMED),
        (header(cookie_value(ORIGIN + "/books/").replace(":", "&")), Reason.MALFORMED),
        (header("Expires=1:" + cookie_value(ORIGIN + "/books/")), Reason.MALFORMED),
        (
            header(cookie_value(ORIGIN + "/books/").replace("Expires=", "Expires=0")),
            Reason.MALFORMED,
        ),
        (
            header(cookie_value(ORIGIN + "/books/").replace("URLPrefix=", "URLPrefix=A")),
            Reason.MALFORMED,
        ),
        (
            header(cookie_value(ORIGIN + "/books/").replace("KeyName=k1", "KeyName=")),
            Reason.MALFORMED,
        ),
        (
            header(cookie_value(ORIGIN + "/books/").replace("KeyName=", "keyname=")),
            Reason.MALFORMED,
        ),
        (
            header(cookie_value(ORIGIN + "/books/").replace("URLPrefix", "URLPREFIX")),
            Reason.MALFORMED,
        ),
        (header(cookie_value(ORIGIN + "/books/") + ":Extra=1"), Reason.MALFORMED),
        (header(cookie_value(ORIGIN + "/books/", key_name="k9")), Reason.UNKNOWN_KEY),
        (header(cookie_value(ORIGIN + "/books/")[:-6] + "AAAAA="), Reason.INVALID),
        (header(cookie_value(ORIGIN + "/books/", NOW - 1)), Reason.EXPIRED),
        # Genuine signatures on prefixes that reach outside the source, or elsewhere.
        (header(cookie_value(ORIGIN + "/")), Reason.INVALID),
        (header(cookie_value(ORIGIN + "/bo")), Reason.INVALID),
        (header(cookie_value(ORIGIN + "/secret/")), Reason.INVALID),
        (header(cookie_value("https://evil.example.com/books/")), Reason.INVALID),
        (header(cookie_value(ORIGIN + "/books/?w=1")), Reason.INVALID),
        (header(cookie_value(ORIGIN + "/books/other/")), Reason.INVALID),
    ],
)
def test_each_bad_cookie_is_denied(cookies: str | None, reason: Reason) -> None:
    assert verify(source(), FILE + "?w=1", cookies=cookies).reason is reason


def test_good_cookie_among_others() -> None:
    cookies = f'a=1; {header(cookie_value(ORIGIN + "/books/"))}; b="x"'
    verdict = verify(source(), FILE, cookies=cookies)
    assert (verdict.reason, verdict.shareable) == (Reason.OK, False)


def test_cookies_are_ignored_unless_accepted() -> None:
    cookies = header(cookie_value(ORIGIN + "/books/"))
    assert verify(source(accept=False), FILE, cookies=cookies).reason is Reason.MISSING


def _signed_url(uri: str, expires: int = NOW + 60) -> str:
    head = f"{uri}{'&' if '?' in uri else '?'}Expires={expires}&KeyName=k1"
    digest = hmac.new(KEY, (ORIGIN + head).encode(), hashlib.sha1).digest()
    return f"{head}&Signature={b64(digest)}"


def test_the_url_decides_when_it_carries_signing_parameters() -> None:
    good = header(cookie_value(ORIGIN + "/books/"))
    expired = header(cookie_value(ORIGIN + "/books/", NOW - 1))
    # A valid URL signature beside an expired cookie: the URL decides, shareable.
    verdict = verify(source(), _signed_url(FILE), cookies=expired)
    assert (verdict.reason, verdict.shareable) == (Reason.OK, True)
    # A broken URL signature is never rescued by a good cookie.
    broken = _signed_url(FILE)[:-6] + "AAAAA="
    assert verify(source(), broken, cookies=good).reason is Reason.INVALID
    assert verify(source(), _signed_url(FILE, NOW - 1), cookies=good).reason is Reason.EXPIRED
    # Any one signing parameter makes it a URL grant: the answer is the URL's alone.
    for partial in ("Expires=1", "KeyName=k1", "Signature=x", "URLPrefix=x"):
        uri = f"{FILE}?{partial}"
        alone = verify(source(), uri)
        assert alone.reason in (Reason.MISSING, Reason.MALFORMED)
        assert verify(source(), uri, cookies=good) == alone
