"""Header profiles (``[server] proxy``): each reads its proxy's headers and ignores others.

Driven against the real sidecar process over loopback, with the headers each proxy sends.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from sidecar.devtools.local_stack import LocalStack
from sidecar.policy.proxies import EXTRACTORS
from tests.conftest import request, running_stack

pytestmark = pytest.mark.e2e

TOKEN = "proxy-profile-token"
SIGNED = "/books/x.png?w=1&s=" + hashlib.md5(f"/books/x.png?w=1{TOKEN}".encode()).hexdigest()
UNSIGNED = "/books/x.png?w=1"
CONFIG = f"""\
[server]
proxy = "{{proxy}}"

[[sources]]
name = "books"
scheme = "md5-token"
path_prefix = "/books/"
hosts = ["image.example.com"]
  [[sources.keys]]
  id = "k"
  secret = "{TOKEN}"
"""

# For each profile: the headers carrying a signed request, and a helper to build them.
PROFILE_HEADERS = {
    "nginx": lambda uri, method="GET": {
        "X-Original-URI": uri,
        "X-Original-Method": method,
        "X-Original-Host": "image.example.com",
        "X-Real-IP": "203.0.113.9",
    },
    "ingress-nginx": lambda uri, method="GET": {
        "X-Original-URL": f"https://image.example.com{uri}",
        "X-Original-Method": method,
        "X-Real-IP": "203.0.113.9",
    },
    "traefik": lambda uri, method="GET": {
        "X-Forwarded-Uri": uri,
        "X-Forwarded-Method": method,
        "X-Forwarded-Host": "image.example.com",
        "X-Forwarded-For": "198.51.100.1, 203.0.113.9",
    },
}
# What a client could spoof for each profile: every other profile's headers.
FOREIGN = {
    "X-Original-URI": SIGNED,
    "X-Original-URL": f"https://image.example.com{SIGNED}",
    "X-Forwarded-Uri": SIGNED,
    "X-Original-Method": "GET",
    "X-Forwarded-Method": "GET",
}


@pytest.fixture(scope="module", params=sorted(EXTRACTORS))
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStack]:
    folder = tmp_path_factory.mktemp(f"proxy-{request.param}")
    with running_stack(folder, CONFIG.replace("{proxy}", request.param), nginx=False) as running:
        running.profile = request.param  # type: ignore[attr-defined]
        yield running


def verify(
    stack: LocalStack, uri: str, *, method: str = "GET", extra: dict[str, str] | None = None
) -> tuple[int, str]:
    profile = stack.profile  # type: ignore[attr-defined]
    if profile == "envoy":
        # ext_authz: the original path and query become the check request's own path.
        headers = {"X-Forwarded-For": "203.0.113.9", **(extra or {})}
        reply = request(
            stack.sidecar_port,
            "/verify" + uri,
            method=method,
            host="image.example.com",
            headers=headers,
        )
    else:
        headers = {**PROFILE_HEADERS[profile](uri, method), **(extra or {})}
        reply = request(stack.sidecar_port, "/verify", host="127.0.0.1", headers=headers)
    return reply.status, reply.headers.get("x-signature-result", "")


def test_signed_request_is_allowed(stack: LocalStack) -> None:
    assert verify(stack, SIGNED) == (200, "ok")


def test_unsigned_request_is_denied(stack: LocalStack) -> None:
    assert verify(stack, UNSIGNED) == (401, "missing")


def test_method_is_read_from_the_profile(stack: LocalStack) -> None:
    assert verify(stack, SIGNED, method="DELETE") == (401, "method")


def test_foreign_headers_change_nothing(stack: LocalStack) -> None:
    # An unsigned request dressed with every other profile's headers pointing at a signed
    # URL: the profile reads only its own headers, so it stays denied.
    profile = stack.profile  # type: ignore[attr-defined]
    own = set(PROFILE_HEADERS.get(profile, lambda uri, method="GET": {})(UNSIGNED))
    spoofed = {name: value for name, value in FOREIGN.items() if name not in own}
    assert spoofed, "every profile has foreign headers to ignore"
    assert verify(stack, UNSIGNED, extra=spoofed) == (401, "missing")


def test_wrong_host_does_not_reach_a_host_bound_source(stack: LocalStack) -> None:
    profile = stack.profile  # type: ignore[attr-defined]
    if profile == "envoy":
        reply = request(stack.sidecar_port, "/verify" + SIGNED, host="evil.example.com",
                        headers={"X-Forwarded-For": "203.0.113.9"})  # fmt: skip
    else:
        headers = PROFILE_HEADERS[profile](SIGNED)
        for name in ("X-Original-Host", "X-Forwarded-Host"):
            if name in headers:
                headers[name] = "evil.example.com"
        if "X-Original-URL" in headers:
            headers["X-Original-URL"] = headers["X-Original-URL"].replace("image.", "evil.")
        reply = request(stack.sidecar_port, "/verify", host="127.0.0.1", headers=headers)
    assert (reply.status, reply.headers.get("x-signature-result")) == (403, "no_source")


@pytest.mark.parametrize(
    ("value", "uri", "host"),
    [
        ("https://image.example.com/books/a.jpg?x=1", "/books/a.jpg?x=1", "image.example.com"),
        ("http://IMAGE.example.com:8443/a", "/a", "image.example.com"),
        ("https://[2001:db8::1]:443/a", "/a", "2001:db8::1"),
        ("image.example.com/books/a.jpg", None, None),
        ("javascript://x/a", None, None),
        ("https://image.example.com", None, None),
    ],
)
def test_ingress_nginx_url_parsing(value: str, uri: str | None, host: str | None) -> None:
    facts = EXTRACTORS["ingress-nginx"]("GET", "/verify", {"X-Original-URL": value})
    assert (facts.uri, facts.host) == (uri, host)


def test_forwarded_for_uses_the_rightmost_address() -> None:
    facts = EXTRACTORS["traefik"](
        "GET", "/verify", {"X-Forwarded-For": "1.1.1.1, 10.0.0.1 ,203.0.113.9"}
    )
    assert facts.client_ip == "203.0.113.9"


def test_envoy_reads_only_the_path_under_verify() -> None:
    assert EXTRACTORS["envoy"]("GET", "/verify/books/a.jpg?s=1", {}).uri == "/books/a.jpg?s=1"
    assert EXTRACTORS["envoy"]("GET", "/verify", {"X-Original-URI": "/books/a"}).uri is None
    assert EXTRACTORS["envoy"]("GET", "/verifyx/books/a", {}).uri is None
