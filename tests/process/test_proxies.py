"""Header profiles (``[server] proxy``): each reads its proxy's headers and ignores others.

Driven against the real sidecar process over loopback, with the headers each proxy sends.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

import pytest

from sidecar.devtools.local_stack import LocalStack
from sidecar.policy.proxies import CLIENT_CHOSEN_HOST, EXTRACTORS
from tests.support.configs import md5_source, sidecar_config
from tests.support.requests import request
from tests.support.stacks import StackFactory

TOKEN = "proxy-profile-token"
SIGNED = "/books/x.png?w=1&s=" + hashlib.md5(f"/books/x.png?w=1{TOKEN}".encode()).hexdigest()
UNSIGNED = "/books/x.png?w=1"


def config(proxy: str) -> str:
    # ingress-nginx only learns the client's own Host header: no hosts with it (docs/security.md).
    hosts = {} if proxy in CLIENT_CHOSEN_HOST else {"hosts": ["image.example.com"]}
    return sidecar_config(
        md5_source("books", "/books/", {"k": TOKEN}, **hosts),
        server={"proxy": proxy},
    )


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
# Caddy's forward_auth sends Traefik's headers; the shipped HAProxy Lua sends nginx's.
PROFILE_HEADERS["caddy"] = PROFILE_HEADERS["traefik"]
PROFILE_HEADERS["haproxy"] = PROFILE_HEADERS["nginx"]
# What a client could spoof for each profile: every other profile's headers.
FOREIGN = {
    "X-Original-URI": SIGNED,
    "X-Original-URL": f"https://image.example.com{SIGNED}",
    "X-Forwarded-Uri": SIGNED,
    "X-Original-Method": "GET",
    "X-Forwarded-Method": "GET",
}


class Proxied(NamedTuple):
    """A running sidecar, and the proxy profile its config chose."""

    stack: LocalStack
    profile: str


@pytest.fixture(scope="module", params=sorted(EXTRACTORS))
def proxied(request: pytest.FixtureRequest, shared_stacks: StackFactory) -> Proxied:
    profile: str = request.param
    return Proxied(shared_stacks(config(profile), nginx=False), profile)


def verify(
    proxied: Proxied, uri: str, *, method: str = "GET", extra: dict[str, str] | None = None
) -> tuple[int, str]:
    stack, profile = proxied
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


def test_signed_request_is_allowed(proxied: Proxied) -> None:
    assert verify(proxied, SIGNED) == (200, "ok")


def test_unsigned_request_is_denied(proxied: Proxied) -> None:
    assert verify(proxied, UNSIGNED) == (401, "missing")


def test_method_is_read_from_the_profile(proxied: Proxied) -> None:
    assert verify(proxied, SIGNED, method="DELETE") == (401, "method")


def test_foreign_headers_change_nothing(proxied: Proxied) -> None:
    # An unsigned request dressed with every other profile's headers pointing at a signed
    # URL: the profile reads only its own headers, so it stays denied.
    own = set(PROFILE_HEADERS.get(proxied.profile, lambda uri, method="GET": {})(UNSIGNED))
    spoofed = {name: value for name, value in FOREIGN.items() if name not in own}
    assert spoofed, "every profile has foreign headers to ignore"
    assert verify(proxied, UNSIGNED, extra=spoofed) == (401, "missing")


def test_wrong_host_does_not_reach_a_host_bound_source(proxied: Proxied) -> None:
    stack, profile = proxied
    if profile in CLIENT_CHOSEN_HOST:
        # No source is host-bound here: the URL's host (the client's Host header) is never
        # routed on, whatever it says; the path decides.
        sent: dict[str, str | bytes] = {**PROFILE_HEADERS[profile](SIGNED)}
        for evil, answer in (
            ("evil.example.com", (200, "ok")),
            ("image.example.com.", (200, "ok")),
            ("st\u212aatic.example.com", (403, "non_canonical")),  # not ASCII: denied
        ):
            sent["X-Original-URL"] = f"https://{evil}{SIGNED}".encode()
            reply = request(stack.sidecar_port, "/verify", host="127.0.0.1", headers=sent)
            assert (reply.status, reply.headers.get("x-signature-result")) == answer, evil
        return
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


def test_a_query_on_the_auth_request_changes_nothing(proxied: Proxied) -> None:
    """Caddy's forward_auth keeps the client's query on the auth request (``/verify?...``):
    answered as ``/verify``, and never read, so a client cannot choose what it says."""
    stack, profile = proxied
    query = SIGNED.partition("?")[2]
    if profile == "envoy":  # its target is the original request itself: no query of its own
        reply = request(stack.sidecar_port, "/verify?" + query, host="image.example.com",
                        headers={"X-Forwarded-For": "203.0.113.9"})  # fmt: skip
        assert (reply.status, reply.headers.get("x-signature-result")) == (403, "non_canonical")
        return
    for uri, answer in ((SIGNED, (200, "ok")), (UNSIGNED, (401, "missing"))):
        headers = PROFILE_HEADERS[profile](uri)
        reply = request(stack.sidecar_port, "/verify?" + query, host="127.0.0.1", headers=headers)
        assert (reply.status, reply.headers.get("x-signature-result")) == answer, uri
