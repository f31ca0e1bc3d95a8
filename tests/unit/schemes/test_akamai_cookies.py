"""Scheme ``akamai``: signed cookies (the token in the ``token_name`` cookie, docs/cookies.md).
The shared contract with the cookie carrier, tokens of the reference signer
``akamai-edgeauth`` (in a child process: it sets TZ on import) verified from a cookie and
matched byte for byte by the scheme's own, openssl as a second signer, each bad cookie,
the source scope of a cookie's ACL, and the URL-first order."""

from __future__ import annotations

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
from tests.support.reference_signers import library_tokens
from tests.support.scheme_contract import (
    NOW,
    Carrier,
    Presented,
    SchemeContract,
    build_source,
    verify,
)

KEY = "4f1c2a9e7b3d5f60718293a4b5c6d7e8f9011223344556677889aabbccddeeff"
FILE = "/books/database-internals.jpg"


def source(*, prefix: str = "/books/", accept: bool = True, **settings: Any) -> SourceScheme:
    return build_source("akamai", [KeyMaterial("edge", secret=KEY.encode())], prefix=prefix,
                        settings={"accept_cookies": accept, **settings})  # fmt: skip


def token(head: str, url: str | None = None, key: str = KEY) -> str:
    """A token signed here from the format's definition (not by the scheme)."""
    message = head + (f"~url={url}" if url is not None else "")
    digest = hmac.new(bytes.fromhex(key), message.encode(), hashlib.sha256).hexdigest()
    return f"{head}~hmac={digest}"


def signed_cookie(url: str, src: SourceScheme | None = None, **grant: Any) -> str:
    signed = (src or source()).sign(sign_request(url, Grant(cookies=True, **grant)))
    (set_cookie,) = signed.cookies
    return set_cookie


class TestAkamaiCookieContract(SchemeContract):
    scheme_name = "akamai"
    settings: ClassVar[dict[str, Any]] = {"accept_cookies": True}
    carrier = Carrier.COOKIE
    signature_param = "__token__"
    bad_signature_values = ("", "g" * 64, "A" * 64, "0" * 63, "0" * 66, "%30" + "0" * 61)

    def key_material(self, key_id: str) -> KeyMaterial:
        return KeyMaterial(key_id, secret=secrets.token_hex(32).encode())

    # The token holds several fields: the signature is its ``hmac``, not the whole value
    # (the contract's generic cookie carrier would replace everything).
    def signature(self, presented: Presented) -> str:
        return (presented.cookies or "").rpartition("~hmac=")[2]

    def with_signature(self, presented: Presented, value: str) -> Presented:
        head = (presented.cookies or "").rpartition("~hmac=")[0]
        return presented._replace(cookies=f"{head}~hmac={value}")

    # Overridden: the contract tampers the query, which a cookie grant does not cover
    # (that request is a genuine expired grant). The forgery here is the token's expiry.
    def test_expired_and_tampered_is_invalid_not_expired(self) -> None:
        verifier = self.single()
        signed = self.sign(verifier, expires=NOW - 100)
        forged = (signed.cookies or "").replace(f"exp={NOW - 100}", f"exp={NOW + 100}")
        assert self.verify(verifier, signed._replace(cookies=forged)).reason is Reason.INVALID
        assert self.verify(verifier, signed).reason is Reason.EXPIRED


def test_reference_tokens_in_a_cookie() -> None:
    specs: list[dict[str, Any]] = [
        {"key": KEY, "expires": NOW + 60, "acl": ["/books/*"]},
        {"key": KEY, "expires": NOW + 60, "acl": ["/books/a/*", "/books/*.jpg"]},
        {"key": KEY, "expires": NOW + 60, "url": FILE},
        {"key": KEY, "expires": NOW + 60, "acl": ["/books/*"], "token_name": "hdnts"},
        {"key": KEY, "expires": NOW + 60, "acl": ["/books/*"], "algorithm": "sha1"},
    ]
    acl, two, url, named, sha1 = library_tokens(specs)
    assert verify(source(), FILE + "?w=1", cookies=f"__token__={acl}").reason is Reason.OK
    assert verify(source(), FILE, cookies=f"__token__={two}").reason is Reason.OK
    assert verify(source(), FILE + "?w=1", cookies=f"__token__={url}").reason is Reason.OK
    # A URL token binds to its path, cookie or not.
    other = verify(source(), "/books/x.png", cookies=f"__token__={url}")
    assert other.reason is Reason.INVALID
    named_source = source(token_name="hdnts")
    assert verify(named_source, FILE, cookies=f"hdnts={named}").reason is Reason.OK
    assert verify(named_source, FILE, cookies=f"__token__={named}").reason is Reason.MISSING
    sha1_source = source(algorithm="sha1")
    assert verify(sha1_source, FILE, cookies=f"__token__={sha1}").reason is Reason.OK
    # The scheme signs what the library signs, byte for byte.
    made = signed_cookie(FILE, expires=NOW + 60)
    assert made.partition(";")[0] == f"__token__={acl}"


def test_openssl_agrees() -> None:
    value = signed_cookie(FILE, expires=NOW + 60).partition(";")[0].partition("=")[2]
    head, _, digest = value.rpartition("~hmac=")
    result = subprocess.run(["openssl", "dgst", "-sha256", "-mac", "HMAC", "-macopt",
                             f"hexkey:{KEY}", "-r"], input=head.encode(), capture_output=True,
                            check=True, timeout=30)  # fmt: skip
    assert result.stdout.split()[0].decode() == digest
    assert value == token(f"exp={NOW + 60}~acl=/books/*")


def test_set_cookie_attributes_and_unsigned_url() -> None:
    signed = source().sign(sign_request("https://image.example.com" + FILE + "?w=1",
                                        Grant(expires=1558131350, cookies=True)))  # fmt: skip
    assert signed.url == "https://image.example.com" + FILE + "?w=1"
    (made,) = signed.cookies
    _, *attributes = made.split("; ")
    assert attributes == ["Path=/books/", "Expires=Fri, 17 May 2019 22:15:50 GMT", "Secure",
                          "HttpOnly", "SameSite=Lax"]  # fmt: skip


def test_cookie_grants_with_their_parts() -> None:
    made = signed_cookie("/books/a/x.png", expires=NOW + 60, prefix="/books/a/",
                         client_ip="203.0.113.5", not_before=NOW - 5)  # fmt: skip
    assert "; Path=/books/a/;" in made
    value = made.partition(";")[0]
    verdict = verify(source(), "/books/a/y.png", cookies=value)
    assert (verdict.reason, verdict.shareable) == (Reason.OK, False)
    assert verify(source(), "/books/b/y.png", cookies=value).reason is Reason.INVALID
    assert verify(source(), "/books/a/y.png", ip="192.0.2.1", cookies=value).reason is (
        Reason.IP_MISMATCH
    )


@pytest.mark.parametrize(
    ("grant", "problem"),
    [
        ({"prefix": "/"}, "under the source's path_prefix"),
        ({"prefix": "/bo"}, "under the source's path_prefix"),
        ({"prefix": "/books"}, "under the source's path_prefix"),
        ({"prefix": "/secret/"}, "under the source's path_prefix"),
        ({"resource": "/books/*"}, "not a resource"),
        ({"prefix": "/books/a/"}, "does not cover"),
    ],
)
def test_sign_refuses_a_cookie_outside_the_source(grant: dict[str, Any], problem: str) -> None:
    with pytest.raises(SchemeError, match=problem):
        signed_cookie(FILE, expires=NOW + 60, **grant)


def cookie(head: str, url: str | None = None, name: str = "__token__") -> str:
    return f"{name}={token(head, url)}"


GOOD = f"exp={NOW + 60}~acl=/books/*"


@pytest.mark.parametrize(
    ("cookies", "reason"),
    [
        (None, Reason.MISSING),
        ("", Reason.MISSING),
        ("session=abc; __token=1", Reason.MISSING),
        (f"{cookie(GOOD)}; {cookie(GOOD)}", Reason.NON_CANONICAL),
        (f'__token__="{token(GOOD)}"', Reason.MALFORMED),
        ("__token__", Reason.MALFORMED),
        (cookie(GOOD).replace("~hmac=", "~hmac=0"), Reason.MALFORMED),
        (cookie(GOOD).replace("exp=", "st=1~exp="), Reason.INVALID),
        (cookie(f"acl=/books/*~exp={NOW + 60}"), Reason.MALFORMED),
        (cookie(f"exp=0{NOW + 60}~acl=/books/*"), Reason.MALFORMED),
        (cookie(f"exp={NOW + 60}~acl=/books/*!"), Reason.MALFORMED),
        (cookie(f"exp={NOW + 60}~acl=/books/*~foo=1"), Reason.MALFORMED),
        (cookie(GOOD)[:-4] + "0000", Reason.INVALID),
        (cookie(f"exp={NOW}~acl=/books/*"), Reason.EXPIRED),
        (cookie(f"st={NOW + 30}~exp={NOW + 60}~acl=/books/*"), Reason.NOT_YET_VALID),
        (cookie(f"ip=192.0.2.1~exp={NOW + 60}~acl=/books/*"), Reason.IP_MISMATCH),
        # Genuine tokens whose ACL reaches outside the source (or elsewhere) are invalid.
        (cookie(f"exp={NOW + 60}~acl=/*"), Reason.INVALID),
        (cookie(f"exp={NOW + 60}~acl=/bo*"), Reason.INVALID),
        (cookie(f"exp={NOW + 60}~acl=/*/database-internals.jpg"), Reason.INVALID),
        (cookie(f"exp={NOW + 60}~acl=/books/*!/secret/*"), Reason.INVALID),
        (cookie(f"exp={NOW + 60}~acl=/secret/*"), Reason.INVALID),
        (cookie(f"exp={NOW + 60}", url="/books/x.png"), Reason.INVALID),
    ],
)
def test_each_bad_cookie_is_denied(cookies: str | None, reason: Reason) -> None:
    assert verify(source(), FILE + "?w=1", NOW, cookies=cookies).reason is reason


def test_a_source_at_the_root_takes_any_acl() -> None:
    verdict = verify(source(prefix="/"), FILE, cookies=cookie(f"exp={NOW + 60}~acl=/*"))
    assert (verdict.reason, verdict.shareable) == (Reason.OK, False)


def test_cookies_are_ignored_unless_accepted() -> None:
    assert verify(source(accept=False), FILE, cookies=cookie(GOOD)).reason is Reason.MISSING


def test_the_url_decides_when_it_carries_a_token() -> None:
    expired = cookie(f"exp={NOW - 1}~acl=/books/*")
    good_url = f"{FILE}?__token__={token(GOOD)}"
    verdict = verify(source(), good_url, cookies=expired)
    assert (verdict.reason, verdict.shareable) == (Reason.OK, True)
    broken = good_url[:-4] + "0000"
    assert verify(source(), broken, cookies=cookie(GOOD)).reason is Reason.INVALID
    late = f"{FILE}?__token__={token(f'exp={NOW - 1}~acl=/books/*')}"
    assert verify(source(), late, cookies=cookie(GOOD)).reason is Reason.EXPIRED
    for spelled in ("__token__=x", "%5F_token__=x", "__token__=a&__token__=b"):
        uri = f"{FILE}?{spelled}"
        alone = verify(source(), uri)
        assert alone.reason in (Reason.MALFORMED, Reason.NON_CANONICAL)
        assert verify(source(), uri, cookies=cookie(GOOD)) == alone
