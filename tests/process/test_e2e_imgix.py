"""``imgix`` end to end: imgix-library and sidecar-signed URLs through the real nginx."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest
from imgix import UrlBuilder  # type: ignore[import-untyped]  # no stubs, no py.typed

from sidecar import config
from sidecar.devtools.local_stack import LocalStack
from sidecar.policy.signing import sign_request, sign_url
from sidecar.schemes.base import Grant
from tests.support.configs import sidecar_config, source_toml
from tests.support.md5_extension import extend
from tests.support.raw_http import exchange, verify_request
from tests.support.requests import HOST, fetch, fetch_with_reason
from tests.support.stacks import StackFactory, image_bytes

ORIGIN = f"https://{HOST}"
TOKEN = "e2e-imgix-token-5b1d0c"
OLD_TOKEN = "e2e-imgix-older-token-77"


@pytest.fixture(scope="module")
def stack(shared_stacks: StackFactory) -> LocalStack:
    keys = {"new": {"secret": TOKEN}, "old": {"secret": OLD_TOKEN}}
    text = sidecar_config(source_toml("books", "imgix", "/books/", keys), server={"clock_skew": 0})
    return shared_stacks(text)


def library_uri(path: str, params: dict[str, Any], token: str = TOKEN) -> str:
    builder = UrlBuilder(HOST, sign_key=token, use_https=True, include_library_param=False)
    url: str = builder.create_url(path, params)
    return url.removeprefix(ORIGIN)


def signed_uri(stack: LocalStack, url: str, expires_in: int = 300) -> str:
    settings = config.load(stack.config_path)
    signed = sign_url(settings, "books", ORIGIN + url, now=time.time(), expires_in=expires_in)
    return signed.removeprefix(ORIGIN)


def changed(char: str) -> str:
    """Another character of the same kind: digits stay non-zero (no leading zero appears),
    lowercase hex stays lowercase hex, so each change stays well formed."""
    if char.isdigit():
        return "1" if char != "1" else "2"
    if char in "abcdef":
        return "abcdef"[("abcdef".index(char) + 1) % 6]
    return "x" if char != "x" else "y"


def test_freshly_signed_url_serves_the_image(stack: LocalStack) -> None:
    uri = signed_uri(stack, "/books/x.png?w=400&h=600")
    status, body, reason = fetch_with_reason(stack, uri)
    assert (status, reason) == (200, "ok")
    assert body == image_bytes(stack, "/books/x.png")


def test_every_changed_byte_is_403_with_its_reason(stack: LocalStack) -> None:
    uri = signed_uri(stack, "/books/x.png?w=400&h=600")
    marker = uri.rindex("&s=")
    refused = 0
    # Every byte after the source's prefix: path, parameters, expiry and signature.
    for index in range(len("/books/"), len(uri)):
        tampered = uri[:index] + changed(uri[index]) + uri[index + 1 :]
        # Breaking "?" or "&s=" leaves no signature: missing; anything else is invalid.
        no_signature = index == uri.index("?") or marker <= index < marker + 3
        expected = "missing" if no_signature else "invalid"
        status, body, reason = fetch_with_reason(stack, tampered)
        assert (status, reason) == (403, expected), tampered
        assert body != image_bytes(stack, "/books/x.png")
        refused += 1
    assert refused == len(uri) - len("/books/") > 60


def test_expired_is_403_expired(stack: LocalStack) -> None:
    now = int(time.time())
    source = config.load(stack.config_path).source("books")
    assert source is not None and source.signatures is not None
    request = sign_request(ORIGIN + "/books/x.png?w=1", Grant(expires=now - 5))
    ours = source.signatures.sign(request).url.removeprefix(ORIGIN)
    library = library_uri("/books/x.png", {"w": 10, "expires": now - 5})
    for uri in (ours, library):
        status, body, reason = fetch_with_reason(stack, uri)
        assert (status, reason) == (403, "expired"), uri
        assert body != image_bytes(stack, "/books/x.png")
    still_good = library_uri("/books/x.png", {"w": 10, "expires": now + 60})
    assert fetch(stack, still_good) == (200, image_bytes(stack, "/books/x.png"))


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/books/x.png", {}),
        ("books/x.png", {"w": 400, "h": 600, "fit": "crop", "auto": "format,compress"}),
        ("/books/café menu.png", {"w": 120}),
        ("/books/café menu.png", {"txt": "crème + brûlée/ü?", "txt64": "Hello, Wörld!"}),
        ("/books/x.png", {"mark64": "https://assets.example.com/logo.png?x=1", "w": 1}),
        ("/books/database-internals.jpg", {"expires": 4_000_000_000, "w": 300}),
    ],
)
def test_imgix_library_urls_serve_the_image(
    stack: LocalStack, path: str, params: dict[str, Any]
) -> None:
    uri = library_uri(path, params)
    status, body, reason = fetch_with_reason(stack, uri)
    assert (status, reason) == (200, "ok"), uri
    assert body == image_bytes(stack, "/" + path.lstrip("/"))


def test_url_signed_with_the_older_token_is_served(stack: LocalStack) -> None:
    uri = library_uri("/books/x.png", {"w": 7}, token=OLD_TOKEN)
    assert fetch(stack, uri) == (200, image_bytes(stack, "/books/x.png"))
    forged = library_uri("/books/x.png", {"w": 7}, token="not-a-configured-token")
    status, _, reason = fetch_with_reason(stack, forged)
    assert (status, reason) == (403, "invalid")


def test_unsigned_and_uppercase_signatures_are_refused(stack: LocalStack) -> None:
    status, _, reason = fetch_with_reason(stack, "/books/x.png?w=1")
    assert (status, reason) == (403, "missing")
    uri = library_uri("/books/x.png", {"w": 2})
    head, _, digest = uri.rpartition("=")
    status, _, reason = fetch_with_reason(stack, f"{head}={digest.upper()}")
    assert (status, reason) == (403, "malformed")


def test_a_length_extension_forgery_is_refused(stack: LocalStack) -> None:
    # MD5(token + message) resumes from its digest: the forgery below IS the imgix
    # signature of the signed text + MD5's padding + "&w=4000" (checked against hashlib),
    # but the padding is bytes (0x80, NUL) no request URI may carry.
    signed = library_uri("/books/x.png", {"w": 400})
    message, _, digest = signed.rpartition("&s=")
    forged, appended = extend(bytes.fromhex(digest), len(TOKEN) + len(message), b"&w=4000")
    raw = message.encode() + appended
    assert forged == hashlib.md5(TOKEN.encode() + raw).digest()
    raw_uri = raw + b"&s=" + forged.hex().encode()
    image = image_bytes(stack, "/books/x.png")
    # To nginx, raw in the request line; to the sidecar, raw in X-Original-URI.
    request_line = b"GET " + raw_uri + b" HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n\r\n"
    for port, data in ((stack.nginx_port, request_line),
                       (stack.sidecar_port, verify_request(raw_uri))):  # fmt: skip
        answers, _ = exchange(port, data)
        assert [answer.status for answer in answers] in ([], [400], [403]), (port, answers)
        assert all(image not in answer.body for answer in answers)
    # Percent-encoded, the URI is other bytes than those hashed.
    encoded = "".join(chr(b) if 0x21 <= b < 0x7F and b != 0x25 else f"%{b:02X}" for b in raw_uri)
    assert fetch_with_reason(stack, encoded)[::2] == (403, "invalid")
