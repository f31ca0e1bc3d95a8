"""End to end through nginx: methods, hosts, URI sizes (also where an operator raised
nginx's header buffers), spoofed headers, the auth cache."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from sidecar.devtools.local_stack import LocalStack
from tests.support.e2e_table import SPOOFED
from tests.support.md5_sources import MAIN_CONFIG, REFERENCE_UNSIGNED, REFERENCE_URL
from tests.support.metrics import sample, verifications_total
from tests.support.requests import fetch, fetch_with_reason, request
from tests.support.stacks import (
    StackFactory,
    any_image_in,
    assert_denied,
    image_bytes,
    running_stack,
)
from tests.support.tokens import md5_signed


@pytest.fixture(scope="module")
def stack(shared_stacks: StackFactory) -> LocalStack:
    return shared_stacks(MAIN_CONFIG)


# --- methods, hosts, sizes, spoofing -----------------------------------------------------


def test_head_is_allowed_without_a_body(stack: LocalStack) -> None:
    reply = request(stack.nginx_port, md5_signed("/books/x.png?head=1"), method="HEAD")
    assert reply.status == 200
    assert reply.body == b""
    assert int(reply.headers["content-length"]) == len(image_bytes(stack, "/books/x.png"))


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
@pytest.mark.parametrize("uri", [md5_signed("/books/x.png?m=1"), "/public/x.png"])
def test_other_methods_are_denied(stack: LocalStack, uri: str, method: str) -> None:
    status, body, reason = fetch_with_reason(stack, uri, method=method)
    assert status in {401, 403}
    assert not any_image_in(body, stack)
    assert reason == "method"


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1", "image.example.com.evil"])
@pytest.mark.parametrize("uri", [REFERENCE_URL, "/public/x.png"])
def test_unknown_host_gets_no_image(stack: LocalStack, uri: str, host: str) -> None:
    asked = verifications_total(stack)
    status, body = fetch(stack, uri, host=host)
    assert status != 200
    assert not any_image_in(body, stack)
    # Refused by the default server, before any verification.
    assert verifications_total(stack) == asked


def long_uri(signed: bool) -> str:
    # nginx's large_client_header_buffers (4 8k) bound the request line at 8 KB: stay
    # just under it ("GET " + URI + " HTTP/1.1\r\n").
    room = 8192 - len("GET  HTTP/1.1\r\n") - len("&s=") - 32 - 8
    unsigned = "/books/x.png?pad=" + "a" * (room - len("/books/x.png?pad="))
    return md5_signed(unsigned) if signed else unsigned


def test_uri_just_under_nginx_limit_gets_a_clean_denial(stack: LocalStack) -> None:
    uri = long_uri(signed=False)
    assert len(uri) > 8000
    status, body, reason = fetch_with_reason(stack, uri)
    assert_denied(status, body, stack, 401)
    assert reason == "missing"


def test_uri_just_under_nginx_limit_is_served_when_signed(stack: LocalStack) -> None:
    status, body, reason = fetch_with_reason(stack, long_uri(signed=True))
    assert (status, reason) == (200, "ok")
    assert body == image_bytes(stack, "/books/x.png")


def test_a_long_uri_through_nginx_with_large_header_buffers_is_denied(tmp_path: Path) -> None:
    # Operators raise large_client_header_buffers for long CloudFront URLs; nginx then
    # passes URIs the sidecar's parser refuses, and turned its 400 into a 500.
    raised = "    large_client_header_buffers 4 32k;\n"
    with running_stack(tmp_path, MAIN_CONFIG, http_extra=raised) as own:
        uri = md5_signed("/books/x.png?pad=" + "a" * 16_500)
        reply = request(own.nginx_port, uri)
        assert reply.status == 403
        assert own.result_for(reply.headers["x-request-id"]) == "non_canonical"


@pytest.mark.parametrize(
    "names", [[name] for name in SPOOFED] + [list(SPOOFED)], ids=[*SPOOFED, "all"]
)
@pytest.mark.parametrize("spoof_target", [REFERENCE_URL, "/public/x.png"])
def test_client_sent_headers_change_nothing(
    stack: LocalStack, names: list[str], spoof_target: str
) -> None:
    headers = {name: SPOOFED[name].replace(REFERENCE_URL, spoof_target) for name in names}
    status, body, reason = fetch_with_reason(stack, REFERENCE_UNSIGNED, headers=headers)
    assert_denied(status, body, stack, 401)
    assert reason == "missing"


# --- the auth cache --------------------------------------------------------------------------


def ok_count(stack: LocalStack, source_name: str = "books") -> float:
    return sample(
        stack,
        "signed_url_verifications_total",
        source=source_name,
        scheme="md5-token",
        result="ok",
        decision="allow",
    )


def test_cached_allow_is_served_twice(stack: LocalStack) -> None:
    uri = md5_signed("/books/x.png?cache=twice")
    before = ok_count(stack)
    for _ in range(2):
        assert fetch(stack, uri) == (200, image_bytes(stack, "/books/x.png"))
    # The second answer came from nginx's auth cache: the sidecar decided once.
    assert ok_count(stack) - before == 1


def test_cached_allow_ends_with_the_url_expiry(stack: LocalStack) -> None:
    expires = math.ceil(time.time()) + 2  # 2 to 3 s ahead: a cache lifetime of at least 1 s
    uri = md5_signed(f"/books/x.png?expires={expires}")
    before = ok_count(stack)
    assert fetch(stack, uri) == (200, image_bytes(stack, "/books/x.png"))
    assert fetch(stack, uri) == (200, image_bytes(stack, "/books/x.png"))
    assert ok_count(stack) - before == 1  # the allow was cached
    time.sleep(max(0.0, expires + 1 - time.time()))
    status, body, reason = fetch_with_reason(stack, uri)
    assert_denied(status, body, stack, 401)
    assert reason == "expired"


def test_an_8_kb_uri_is_cached_like_any_other(stack: LocalStack) -> None:
    room = 8000 - len("GET  HTTP/1.1\r\n") - 40
    uri = md5_signed("/books/x.png?pad=" + "a" * (room - len("/books/x.png?pad=")))
    assert request(stack.nginx_port, uri).status == 200
    asked = verifications_total(stack)
    assert request(stack.nginx_port, uri).status == 200
    assert verifications_total(stack) == asked  # the second answer came from the auth cache
    errors = (stack.folder / "nginx" / "error.log").read_text()
    assert "not enough for cache key" not in errors
