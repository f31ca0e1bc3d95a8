"""``gcdn`` end to end: Cloud CDN signed URLs (both forms) through the real nginx and sidecar.

The URLs are signed here as Google's Python sample signs them (``hmac`` + padded
``urlsafe_b64encode``), not by the scheme under test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from sidecar.devtools.demo import png
from sidecar.devtools.local_stack import LocalStack
from tests.support.configs import sidecar_config, source_toml
from tests.support.requests import fetch, fetch_with_reason
from tests.support.stacks import StackFactory, image_bytes

ORIGIN = "https://image.example.com"
KEYS = {  # KeyName -> key as Google shows it (generated for these tests)
    "gcdn-new": "N3yAAtXbJ8oKd1_qzR0v-w==",
    "gcdn-old": "nZtRohdNF9m3cKM24IcK4w==",
    "gcdn-reports": "AAECAwQFBgcICQoLDA0ODw==",
}


@pytest.fixture(scope="module")
def stack(shared_stacks: StackFactory) -> LocalStack:
    images = {name: {"secret": KEYS[name]} for name in ("gcdn-new", "gcdn-old")}
    reports = {"gcdn-reports": {"secret": KEYS["gcdn-reports"]}}
    config = sidecar_config(
        source_toml("gimages", "gcdn", "/", images, public_origin=ORIGIN),
        source_toml("greports", "gcdn", "/reports/", reports, public_origin=ORIGIN),
        server={"clock_skew": 0},
    )
    running = shared_stacks(config)
    # A file a /books/ prefix must not open, though its name starts the same way.
    other = running.images / "books-other" / "x.png"
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_bytes(png(11, 13, (200, 100, 0)))
    return running


def _signature(key_name: str, string: str) -> str:
    key = base64.urlsafe_b64decode(KEYS[key_name])
    return base64.urlsafe_b64encode(hmac.new(key, string.encode(), hashlib.sha1).digest()).decode()


def signed(uri: str, expires_in: int = 300, key_name: str = "gcdn-new") -> str:
    head = f"{uri}{'&' if '?' in uri else '?'}Expires={int(time.time()) + expires_in}"
    head += f"&KeyName={key_name}"
    return f"{head}&Signature={_signature(key_name, ORIGIN + head)}"


def prefixed(uri: str, prefix: str, expires_in: int = 300, key_name: str = "gcdn-new") -> str:
    encoded = base64.urlsafe_b64encode(prefix.encode()).decode()
    policy = f"URLPrefix={encoded}&Expires={int(time.time()) + expires_in}&KeyName={key_name}"
    return f"{uri}{'&' if '?' in uri else '?'}{policy}&Signature={_signature(key_name, policy)}"


@pytest.mark.parametrize(
    ("uri", "file"),
    [
        ("/books/x.png", "/books/x.png"),
        ("/books/x.png?w=640&h=480", "/books/x.png"),
        ("/books/caf%C3%A9%20menu.png", "/books/caf\u00e9 menu.png"),
        ("/reports/r.png", "/reports/r.png"),
    ],
)
def test_signed_urls_serve_the_file(stack: LocalStack, uri: str, file: str) -> None:
    key_names = ("gcdn-reports",) if uri.startswith("/reports/") else ("gcdn-new", "gcdn-old")
    for key_name in key_names:
        status, body = fetch(stack, signed(uri, key_name=key_name))
        assert status == 200
        assert body == image_bytes(stack, file)


def test_url_prefix_opens_its_folder_only(stack: LocalStack) -> None:
    books = ORIGIN + "/books/"
    for uri in ("/books/x.png?w=1", "/books/database-internals.jpg"):
        status, body = fetch(stack, prefixed(uri, books, key_name="gcdn-old"))
        assert (status, body) == (200, image_bytes(stack, uri.partition("?")[0]))
    for elsewhere in ("/secret/x.png", "/books-other/x.png", "/public/x.png"):
        status, body, reason = fetch_with_reason(stack, prefixed(elsewhere, books))
        assert (status, reason) == (403, "invalid"), elsewhere
        assert body != image_bytes(stack, elsewhere)


def test_a_prefix_wider_than_its_source_is_refused(stack: LocalStack) -> None:
    # Signed with the reports source's own key, but for the whole origin.
    for prefix in (ORIGIN + "/", ORIGIN + "/reports"):
        uri = prefixed("/reports/r.png", prefix, key_name="gcdn-reports")
        status, body, reason = fetch_with_reason(stack, uri)
        assert (status, reason) == (403, "invalid"), prefix
        assert body != image_bytes(stack, "/reports/r.png")
    within = prefixed("/reports/r.png", ORIGIN + "/reports/", key_name="gcdn-reports")
    assert fetch(stack, within)[0] == 200


def test_expired_is_403_expired(stack: LocalStack) -> None:
    for uri in (signed("/books/x.png", -5), prefixed("/books/x.png", ORIGIN + "/books/", -5)):
        status, body, reason = fetch_with_reason(stack, uri)
        assert (status, reason) == (403, "expired")
        assert body != image_bytes(stack, "/books/x.png")


def _changed(char: str) -> str | None:
    """Another character of the same kind (so numbers stay numbers), or None."""
    for alphabet in ("0123456789", "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"):
        if char in alphabet:
            return alphabet[(alphabet.index(char) + 1) % len(alphabet)]
    return None


def _expected(uri: str, index: int) -> set[str]:
    """What the sidecar must answer when the character at ``index`` changes."""
    sig, key_name = uri.index("&Signature=") + 11, uri.index("&KeyName=") + 9
    if index >= sig:
        return {"invalid", "malformed"}  # the last character holds unused bits
    if index >= sig - 10:
        return {"missing"}  # "Signature" renamed: the URL carries none
    if key_name <= index < sig - 11:
        return {"unknown_key"}
    names = [uri.index(f"{mark}{name}=") for mark, name in (("&", "Expires"), ("&", "KeyName"))]
    if any(start < index < start + 9 for start in names):
        return {"malformed"}
    return {"invalid"}  # the path, the client's own query, the expiry's digits


def test_every_changed_character_is_403_with_its_reason(stack: LocalStack) -> None:
    uri = signed("/books/x.png?w=640", key_name="gcdn-old")
    assert fetch(stack, uri)[0] == 200
    checked = 0
    for index, char in enumerate(uri):
        replacement = _changed(char)
        if replacement is None:
            continue  # separators: covered by the unit tests' strict parsing
        changed = uri[:index] + replacement + uri[index + 1 :]
        status, body, reason = fetch_with_reason(stack, changed)
        assert status == 403, changed
        assert reason in _expected(uri, index), (changed, reason)
        assert body != image_bytes(stack, "/books/x.png")
        checked += 1
    assert checked > 70
