"""Signed cookies end to end (docs/cookies.md) for ``gcdn`` and ``akamai``: cookies made by the
reference signers (Google's ``sign_cookie`` as its samples write it, ``akamai-edgeauth`` in
a child process) sent through the real shipped nginx (its auth location passes the
client's ``Cookie``) to the real sidecar, with the auth cache on."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from sidecar.devtools.local_stack import LocalStack
from tests.support.configs import sidecar_config, source_toml
from tests.support.reference_signers import library_tokens
from tests.support.requests import fetch, fetch_with_reason
from tests.support.stacks import StackFactory, image_bytes

ORIGIN = "https://image.example.com"
GCDN_KEY = "N3yAAtXbJ8oKd1_qzR0v-w=="
AKAMAI_KEY = "4f1c2a9e7b3d5f60718293a4b5c6d7e8f9011223344556677889aabbccddeeff"
FILES = ("/books/x.png", "/books/database-internals.jpg")


@pytest.fixture(scope="module", params=["gcdn", "akamai"])
def scheme(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def stack(shared_stacks: StackFactory, scheme: str) -> LocalStack:
    if scheme == "gcdn":
        # A KeyName names one key of one source: the same key under another name.
        books = source_toml("books", "gcdn", "/books/", {"g1": {"secret": GCDN_KEY}},
                            public_origin=ORIGIN, accept_cookies=True)  # fmt: skip
        secret = source_toml("secret", "gcdn", "/secret/", {"g2": {"secret": GCDN_KEY}},
                             public_origin=ORIGIN, accept_cookies=True)  # fmt: skip
    else:
        keys = {"a1": {"secret": AKAMAI_KEY}}
        books = source_toml("books", "akamai", "/books/", keys, accept_cookies=True)
        secret = source_toml("secret", "akamai", "/secret/", keys, accept_cookies=True)
    # The auth cache is on (cache_ttl 60 by default): a cookie allow must never reach it.
    return shared_stacks(sidecar_config(books, secret, server={"clock_skew": 0, "cache_ttl": 60}))


def gcdn_cookie(prefix: str, expires: int, key_name: str = "g1") -> str:
    """``Cloud-CDN-Cookie`` as Google's samples sign it (golang-samples signCookie)."""
    encoded = base64.urlsafe_b64encode(f"{ORIGIN}{prefix}".encode()).decode()
    string = f"URLPrefix={encoded}:Expires={expires}:KeyName={key_name}"
    key = base64.urlsafe_b64decode(GCDN_KEY)
    digest = base64.urlsafe_b64encode(hmac.new(key, string.encode(), hashlib.sha1).digest())
    return f"Cloud-CDN-Cookie={string}:Signature={digest.decode()}"


def reference_cookie(scheme: str, prefix: str = "/books/", expires_in: int = 300) -> str:
    expires = int(time.time()) + expires_in
    if scheme == "gcdn":
        return gcdn_cookie(prefix, expires)
    (token,) = library_tokens([{"key": AKAMAI_KEY, "expires": expires, "acl": [prefix + "*"]}])
    return f"__token__={token}"


def tampered(cookie: str) -> str:
    """One signature character changed, to one valid in both hex and base64url (the last
    two are gcdn's padding and its character with unused bits)."""
    index = len(cookie) - 3
    return cookie[:index] + ("0" if cookie[index] != "0" else "1") + cookie[index + 1 :]


def test_the_bytes_under_the_prefix(stack: LocalStack, scheme: str) -> None:
    cookie = {"Cookie": f"session=1; {reference_cookie(scheme)}"}
    for uri in (*FILES, "/books/x.png?w=640&h=480"):
        status, body = fetch(stack, uri, headers=cookie)
        assert (status, body) == (200, image_bytes(stack, uri.partition("?")[0])), uri


def test_outside_the_prefix_is_403(stack: LocalStack, scheme: str) -> None:
    cookie = {"Cookie": reference_cookie(scheme)}
    status, body, reason = fetch_with_reason(stack, "/secret/x.png", headers=cookie)
    # gcdn: the KeyName is the /books/ source's, unknown to /secret/'s; akamai: the same
    # key, but the token's ACL is /books/*.
    assert (status, reason) == (403, "unknown_key" if scheme == "gcdn" else "invalid")
    assert body != image_bytes(stack, "/secret/x.png")
    if scheme == "gcdn":  # /secret/'s own key on a /books/ prefix widens nothing either
        expires = int(time.time()) + 300
        widened = {"Cookie": gcdn_cookie("/books/", expires, key_name="g2")}
        status, body, reason = fetch_with_reason(stack, "/secret/x.png", headers=widened)
        assert (status, reason) == (403, "invalid")
        assert body != image_bytes(stack, "/secret/x.png")


def test_expired_and_tampered_are_403(stack: LocalStack, scheme: str) -> None:
    expired = {"Cookie": reference_cookie(scheme, expires_in=-5)}
    status, body, reason = fetch_with_reason(stack, "/books/x.png", headers=expired)
    assert (status, reason) == (403, "expired")
    assert body != image_bytes(stack, "/books/x.png")
    forged = {"Cookie": tampered(reference_cookie(scheme))}
    status, body, reason = fetch_with_reason(stack, "/books/x.png", headers=forged)
    assert (status, reason) == (403, "invalid")
    assert body != image_bytes(stack, "/books/x.png")


def test_a_cookie_allow_is_not_cached_for_a_request_without_it(
    stack: LocalStack, scheme: str
) -> None:
    uri = "/books/database-internals.jpg?cache-probe=1"
    cookie = {"Cookie": reference_cookie(scheme)}
    for _ in range(2):  # twice: a cacheable answer would be stored by now
        assert fetch(stack, uri, headers=cookie) == (200, image_bytes(stack, FILES[1]))
    status, body, reason = fetch_with_reason(stack, uri)
    assert (status, reason) == (403, "missing")
    assert body != image_bytes(stack, FILES[1])
