"""``thumbor`` end to end: libthumbor's and our signed URLs through the real shipped nginx.

nginx serves the decoded path from disk, signature segment included, so each test first
writes an image at exactly the path its signed URL names (``place``): what is served is
that file's bytes, and a refused URL gets none of them.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

import pytest
from libthumbor import CryptoURL  # type: ignore[import-untyped]  # no stubs, no py.typed

from sidecar import config
from sidecar.core import canonical
from sidecar.devtools.demo import png
from sidecar.devtools.local_stack import LocalStack
from sidecar.policy.signing import sign_url
from tests.support.configs import sidecar_config, source_toml
from tests.support.requests import HOST, fetch, fetch_with_reason
from tests.support.stacks import StackFactory

ORIGIN = f"https://{HOST}"
KEY = "e2e-thumbor-security-key-4c1f"
OLD_KEY = "e2e-thumbor-older-key-0a7"


@pytest.fixture(scope="module")
def stack(shared_stacks: StackFactory) -> LocalStack:
    keys = {"new": {"secret": KEY}, "old": {"secret": OLD_KEY}}
    return shared_stacks(sidecar_config(source_toml("thumbs", "thumbor", "/thumbs/", keys)))


def library(key: str = KEY, **options: Any) -> str:
    """libthumbor's URL served under the source's prefix."""
    url: str = CryptoURL(key=key.encode()).generate(**options)
    return "/thumbs" + url


def place(stack: LocalStack, uri: str) -> bytes:
    """Write a distinct image at the file path ``uri`` names; return its bytes."""
    parsed = canonical.parse(uri)
    assert parsed is not None, uri
    data = png(6 + len(uri) % 50, 6, (len(uri) % 256, 90, 30))
    target = stack.images / parsed.path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return data


def ours(stack: LocalStack, url: str) -> str:
    signed = sign_url(config.load(stack.config_path), "thumbs", ORIGIN + url, now=time.time())
    return signed.removeprefix(ORIGIN)


def is_signature(text: str) -> bool:
    """20 bytes of base64url in their one padded spelling (computed here, not by us)."""
    try:
        data = base64.urlsafe_b64decode(text)
    except (binascii.Error, ValueError):
        return False
    return len(data) == 20 and base64.urlsafe_b64encode(data).decode() == text


def changed(char: str) -> str:
    if char.isdigit():
        return "1" if char != "1" else "2"
    return "x" if char != "x" else "y"


def test_our_fresh_url_serves_the_image(stack: LocalStack) -> None:
    uri = ours(stack, "/thumbs/300x200/smart/books/a.jpg")
    assert uri == library(image_url="books/a.jpg", width=300, height=200, smart=True)
    data = place(stack, uri)
    assert fetch_with_reason(stack, uri) == (200, data, "ok")


@pytest.mark.parametrize(
    "options",
    [
        {"image_url": "books/a.jpg"},
        {
            "image_url": "books/a.jpg",
            "width": 300,
            "height": 200,
            "smart": True,
            "fit_in": True,
            "flip": True,
            "filters": ["quality(80)", "round_corner(20|20,0,0,0)"],
            "crop": ((10, 20), (310, 220)),
            "halign": "left",
            "valign": "top",
            "trim": ("top-left", 5),
            "meta": True,
        },
        {"image_url": "books/caf%C3%A9%20menu.png", "width": 120, "full_fit_in": True},
        {"image_url": "images.example.com/books/a.jpg", "adaptive_fit_in": True, "height": 90},
        {"image_url": "books/a.jpg?v=2&w=1", "width": 64},  # the image URL's own query
        {"image_url": "books/a.jpg%3Fv%3D2", "width": 64},  # ... or its encoded "?"
    ],
)
def test_libthumbor_urls_serve_the_image(stack: LocalStack, options: dict[str, Any]) -> None:
    uri = library(**options)
    data = place(stack, uri)
    assert fetch_with_reason(stack, uri) == (200, data, "ok"), uri


@pytest.mark.parametrize("buster", ["?v=3", "?v=3&w=1", "?"])
def test_a_query_appended_to_a_libthumbor_url_serves_the_image(
    stack: LocalStack, buster: str
) -> None:
    # thumbor's server signs the path alone: a cache buster is not covered, and cannot
    # change the file nginx serves.
    uri = library(image_url="books/a.jpg", width=300, height=200, smart=True)
    data = place(stack, uri)
    assert fetch_with_reason(stack, uri + buster) == (200, data, "ok")
    assert fetch_with_reason(stack, uri.replace("300x200", "300x201") + buster)[::2] == (
        403, "invalid")  # fmt: skip
    pinned = library(image_url="books/a.jpg?v=2", width=300)
    pinned_data = place(stack, pinned)
    assert fetch_with_reason(stack, pinned) == (200, pinned_data, "ok")
    assert fetch_with_reason(stack, pinned.replace("v=2", "v=3"))[::2] == (403, "invalid")


def test_every_changed_byte_is_403_with_its_reason(stack: LocalStack) -> None:
    uri = library(image_url="books/a.jpg?v=2", width=300, height=200, smart=True)
    data = place(stack, uri)
    start = len("/thumbs/")
    signature = uri[start : start + 28]
    refused = 0
    for index in range(start, len(uri)):
        tampered = uri[:index] + changed(uri[index]) + uri[index + 1 :]
        if index < start + 28:  # in the signature: a wrong one, or not one at all
            new = tampered[start : start + 28]
            expected = "invalid" if is_signature(new) else "malformed"
        elif index == start + 28:  # the "/" after it: the first segment is too long
            expected = "malformed"
        else:
            expected = "invalid"
        status, body, reason = fetch_with_reason(stack, tampered)
        assert (status, reason) == (403, expected), tampered
        assert body != data
        refused += 1
    assert refused == len(uri) - start > 50
    assert signature.endswith("=")


def test_a_foreign_key_is_403_and_the_older_key_is_served(stack: LocalStack) -> None:
    forged = library("not-the-security-key", image_url="books/a.jpg", width=32)
    place(stack, forged)
    status, _, reason = fetch_with_reason(stack, forged)
    assert (status, reason) == (403, "invalid")
    older = library(OLD_KEY, image_url="books/a.jpg", width=33)
    data = place(stack, older)
    assert fetch(stack, older) == (200, data)


def test_unsafe_is_403_even_when_the_file_exists(stack: LocalStack) -> None:
    for uri in ("/thumbs/unsafe/300x200/books/a.jpg", "/thumbs/unsafe/books/a.jpg"):
        data = place(stack, uri)
        status, body, reason = fetch_with_reason(stack, uri)
        assert (status, reason) == (403, "missing")
        assert body != data


@pytest.mark.parametrize(
    ("respell", "reason"),
    [
        (lambda sig: sig.rstrip("="), "malformed"),  # no padding
        (lambda sig: sig.replace("=", "%3D"), "malformed"),  # "=" percent-encoded
        (lambda sig: sig.replace("-", "+"), "malformed"),  # the standard alphabet
        (lambda sig: sig + "A", "malformed"),  # wrong length
    ],
)
def test_other_spellings_of_the_signature_are_403(
    stack: LocalStack, respell: Any, reason: str
) -> None:
    # A signature holding "-" (base64url's 62nd character), so "+" can stand for it.
    uri = next(
        uri
        for width in range(1, 300)
        if "-" in (uri := library(image_url="books/a.jpg", width=width)).split("/")[2]
    )
    signature = uri.split("/")[2]
    spelled = uri.replace(signature, respell(signature))
    assert spelled != uri
    data = place(stack, spelled)
    status, body, got = fetch_with_reason(stack, spelled)
    assert (status, got) == (403, reason), spelled
    assert body != data


def test_signature_in_the_wrong_segment_is_403(stack: LocalStack) -> None:
    uri = library(image_url="books/a.jpg", width=300, height=200)
    signature = uri.split("/")[2]
    moved = f"/thumbs/300x200/{signature}/books/a.jpg"
    place(stack, moved)
    status, _, reason = fetch_with_reason(stack, moved)
    assert (status, reason) == (403, "malformed")


@pytest.mark.parametrize(
    "options",
    [
        {"image_url": "http://images.example.com/a.jpg"},  # "//" of a full image URL
        {"image_url": "http%3A%2F%2Fimages.example.com%2Fa.jpg"},  # encoded "/"
        {"image_url": "books/a.jpg", "filters": ["watermark(http://w.example.com/w.png,0,0,0)"]},
        {"image_url": "books/a.jpg;v=2"},
    ],
)
def test_shapes_the_canonical_gate_refuses_are_403_non_canonical(
    stack: LocalStack, options: dict[str, Any]
) -> None:
    uri = library(**options)
    status, _, reason = fetch_with_reason(stack, uri)
    assert (status, reason) == (403, "non_canonical"), uri


def test_dot_segments_out_of_a_signed_url_are_403(stack: LocalStack) -> None:
    uri = library(image_url="books/a.jpg", width=35)
    signature = uri.split("/")[2]
    escaping = f"/thumbs/{signature}/../../books/x.png"
    status, _, reason = fetch_with_reason(stack, escaping)
    # nginx would serve /books/x.png (it normalises $uri); the raw URI is refused first.
    assert (status, reason) == (403, "non_canonical")
