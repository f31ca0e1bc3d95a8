"""``imgproxy`` end to end: the imgproxy package's and our signed URLs through the real
shipped nginx and sidecar.

nginx serves the decoded path from disk, signature segment included, so each test first
writes an image at exactly the path its signed URL names (``place``): what is served is
that file's bytes, and a refused URL gets none of them.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time

import pytest
from imgproxy import ImgProxy  # type: ignore[import-untyped]  # no stubs, no py.typed

from sidecar import config
from sidecar.core import canonical
from sidecar.devtools.demo import png
from sidecar.devtools.local_stack import LocalStack
from sidecar.policy.signing import sign_url
from tests.support.configs import sidecar_config, source_toml
from tests.support.requests import HOST, fetch_with_reason
from tests.support.stacks import StackFactory

ORIGIN = f"https://{HOST}"
KEY, SALT = "6e2b" * 16, "a41f" * 8
OLD_KEY, OLD_SALT = "90c3" * 16, "17d2" * 8
SOURCE = "https://origin.example.com/books/a.jpg"


@pytest.fixture(scope="module")
def stack(shared_stacks: StackFactory) -> LocalStack:
    keys = {"new": {"secret": KEY, "salt": SALT}, "old": {"secret": OLD_KEY, "salt": OLD_SALT}}
    return shared_stacks(sidecar_config(source_toml("img", "imgproxy", "/img/", keys)))


def library(*options: str, key: str = KEY, salt: str = SALT, width: int = 300) -> str:
    """The imgproxy package's URL, served under the source's prefix."""
    url: str = ImgProxy(SOURCE, key=key, salt=salt, width=width, extension="webp")(*options)
    return "/img" + url


def place(stack: LocalStack, uri: str) -> bytes:
    """Write a distinct image at the file path ``uri`` names; return its bytes."""
    parsed = canonical.parse(uri.partition("?")[0])
    assert parsed is not None, uri
    data = png(6 + len(uri) % 50, 6, (len(uri) % 256, 40, 90))
    target = stack.images / parsed.path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return data


def ours(stack: LocalStack, url: str, expires_in: int | None = None) -> str:
    settings = config.load(stack.config_path)
    signed = sign_url(settings, "img", ORIGIN + url, now=time.time(), expires_in=expires_in)
    return signed.removeprefix(ORIGIN)


def by_hand(rest: str, key: str = KEY, salt: str = SALT) -> str:
    """imgproxy's signature of ``/<rest>``, computed here from its documented recipe."""
    digest = hmac.digest(bytes.fromhex(key), bytes.fromhex(salt) + b"/" + rest.encode(), "sha256")
    return "/img/" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode() + "/" + rest


def is_signature(text: str) -> bool:
    """32 bytes of base64url in their one unpadded spelling (computed here, not by us)."""
    try:
        data = base64.urlsafe_b64decode(text + "=")
    except (binascii.Error, ValueError):
        return False
    return len(data) == 32 and base64.urlsafe_b64encode(data).decode() == text + "="


@pytest.mark.parametrize("options", [(), ("q:80", "bl:2"), ("pr:sharp", "g:sm")])
def test_the_imgproxy_packages_urls_serve_the_image(
    stack: LocalStack, options: tuple[str, ...]
) -> None:
    uri = library(*options)
    data = place(stack, uri)
    assert fetch_with_reason(stack, uri) == (200, data, "ok")


def test_our_urls_serve_the_image_and_expire(stack: LocalStack) -> None:
    uri = ours(stack, "/img/rs:fit:300:300/plain/books/a.jpg@webp")
    assert uri == by_hand("rs:fit:300:300/plain/books/a.jpg@webp")  # no default_ttl
    data = place(stack, uri)
    assert fetch_with_reason(stack, uri) == (200, data, "ok")
    timed = ours(stack, "/img/rs:fit:300:300/plain/books/a.jpg@webp", expires_in=600)
    expires = int(timed.split("/")[3].removeprefix("exp:"))
    assert timed == by_hand(f"exp:{expires}/rs:fit:300:300/plain/books/a.jpg@webp")
    data = place(stack, timed)
    assert fetch_with_reason(stack, timed) == (200, data, "ok")
    past = by_hand(f"exp:{int(time.time()) - 60}/rs:fit:300:300/plain/books/a.jpg@webp")
    place(stack, past)
    assert fetch_with_reason(stack, past)[::2] == (403, "expired")


def test_every_changed_byte_is_403_with_its_reason(stack: LocalStack) -> None:
    uri = library("q:80")
    data = place(stack, uri)
    start = len("/img/")
    end = uri.index("/", start)
    refused = 0
    for index in range(start, len(uri)):
        char = uri[index]
        if char == "/":
            continue  # moving a segment boundary is covered by the signature tests
        tampered = uri[:index] + ("B" if char == "A" else "A") + uri[index + 1 :]
        place(stack, tampered)
        status, body, reason = fetch_with_reason(stack, tampered)
        signature = tampered[start:end]
        expected = "invalid" if index >= end or is_signature(signature) else "malformed"
        assert (status, reason) == (403, expected), tampered
        assert body != data
        refused += 1
    assert refused > 80


def test_the_older_key_pair_serves_and_a_foreign_one_is_403(stack: LocalStack) -> None:
    older = library(key=OLD_KEY, salt=OLD_SALT, width=33)
    data = place(stack, older)
    assert fetch_with_reason(stack, older) == (200, data, "ok")
    swapped = library(key=OLD_KEY, salt=SALT, width=34)  # a key with another pair's salt
    place(stack, swapped)
    assert fetch_with_reason(stack, swapped)[::2] == (403, "invalid")


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("/img/insecure/rs:fit:10:10/plain/books/a.jpg", "missing"),
        ("/img/rs:fit:10:10/plain/books/a.jpg", "missing"),
        ("/img/" + "A" * 42 + "/plain/books/a.jpg", "malformed"),
    ],
)
def test_unsigned_and_malformed_urls_are_403(stack: LocalStack, uri: str, reason: str) -> None:
    data = place(stack, uri)
    status, body, got = fetch_with_reason(stack, uri)
    assert (status, got) == (403, reason)
    assert body != data


def test_a_query_on_a_signed_url_is_403(stack: LocalStack) -> None:
    uri = library(width=35)
    data = place(stack, uri)
    status, body, reason = fetch_with_reason(stack, uri + "?v=3")
    assert (status, reason) == (403, "malformed")
    assert body != data


@pytest.mark.parametrize(
    "rest",
    ["plain/http://origin.example.com/books/a.jpg", "plain/http:%2F%2Forigin/books/a.jpg"],
)
def test_absolute_plain_sources_stop_at_the_canonical_gate(stack: LocalStack, rest: str) -> None:
    # Signed correctly, yet refused: nginx would merge "//" and decode "%2F".
    status, _, reason = fetch_with_reason(stack, by_hand(rest))
    assert (status, reason) == (403, "non_canonical")
