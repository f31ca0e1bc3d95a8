"""A URL that carries a grant is decided by its URL, whatever the client's other cookies
say (docs/cookies.md): through the real nginx with the shipped files, which pass the
client's ``Cookie`` on, for a source that never reads cookies (md5-token) and one that
accepts a cookie grant (gcdn).

A control byte in an analytics cookie, cookies adding up to more than one header line the
sidecar reads, and a grant cookie planted twice by a sibling site must neither turn the
signed URL into a 500 nor deny it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from sidecar.devtools.local_stack import LocalStack
from tests.support.configs import md5_source, sidecar_config, source_toml
from tests.support.requests import HOST, raw_exchange
from tests.support.stacks import StackFactory, any_image_in, image_bytes
from tests.support.tokens import BOOKS_TOKEN, md5_signed

ORIGIN = f"https://{HOST}"
GCDN_KEY = "N3yAAtXbJ8oKd1_qzR0v-w=="
CONFIG = sidecar_config(
    md5_source("books", "/books/", {"b": BOOKS_TOKEN}),
    source_toml(
        "secret",
        "gcdn",
        "/secret/",
        {"g1": {"secret": GCDN_KEY}},
        public_origin=ORIGIN,
        accept_cookies=True,
    ),
)


def gcdn_signed(path: str) -> str:
    """A Google Cloud CDN signed URL, by the documented formula: HMAC-SHA1 over the URL."""
    url = f"{ORIGIN}{path}?Expires={int(time.time()) + 300}&KeyName=g1"
    key = base64.urlsafe_b64decode(GCDN_KEY)
    signature = base64.urlsafe_b64encode(hmac.new(key, url.encode(), hashlib.sha1).digest())
    return url.removeprefix(ORIGIN) + "&Signature=" + signature.decode()


def signed_uri(path: str) -> str:
    return md5_signed(path) if path.startswith("/books/") else gcdn_signed(path)


PADDING = tuple(b"Cookie: pad%d=" % line + b"x" * 6000 for line in range(3))  # 18 KB
COOKIES = {
    "control byte": (b"Cookie: tracker=a\x01b; theme=dark",),
    "escape and DEL": (b"Cookie: t=\x1b[31m\x7f",),
    "over 16 KB in all": PADDING,
    "a grant cookie twice": (b"Cookie: Cloud-CDN-Cookie=planted; Cloud-CDN-Cookie=again",),
}


@pytest.fixture(scope="module")
def stack(shared_stacks: StackFactory) -> LocalStack:
    return shared_stacks(CONFIG)


def get(stack: LocalStack, uri: str, cookie_lines: tuple[bytes, ...]) -> bytes:
    head = f"GET {uri} HTTP/1.1\r\nHost: {HOST}\r\n".encode() + b"\r\n".join(cookie_lines)
    return raw_exchange(stack.nginx_port, head + b"\r\nConnection: close\r\n\r\n")


@pytest.mark.parametrize("path", ["/books/x.png", "/secret/x.png"])
@pytest.mark.parametrize("cookies", list(COOKIES))
def test_a_signed_url_is_served_whatever_the_cookies(
    stack: LocalStack, path: str, cookies: str
) -> None:
    answer = get(stack, signed_uri(path), COOKIES[cookies])
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert answer.endswith(image_bytes(stack, path))


@pytest.mark.parametrize("path", ["/books/x.png", "/secret/x.png"])
@pytest.mark.parametrize("cookies", list(COOKIES))
def test_an_unsigned_url_is_still_denied_not_failed(
    stack: LocalStack, path: str, cookies: str
) -> None:
    answer = get(stack, path, COOKIES[cookies])
    status = answer[9:12]
    assert status in (b"401", b"403"), answer[:200]
    assert not any_image_in(answer, stack)
