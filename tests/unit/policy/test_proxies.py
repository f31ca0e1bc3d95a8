"""Header profiles (``[server] proxy``): how each extractor reads its proxy's headers.

The same profiles against the real sidecar process: ``tests/process/test_proxies.py``.
"""

from __future__ import annotations

import pytest

from sidecar.policy.proxies import EXTRACTORS


@pytest.mark.parametrize(
    ("value", "uri"),
    [
        ("https://image.example.com/books/a.jpg?x=1", "/books/a.jpg?x=1"),
        ("http://IMAGE.example.com:8443/a", "/a"),
        ("https://[2001:db8::1]:443/a", "/a"),
        ("image.example.com/books/a.jpg", None),
        ("javascript://x/a", None),
        ("https://image.example.com", None),
        ("https://user@image.example.com/a", None),
        ("https://image.example.com/a#x", None),
    ],
)
def test_ingress_nginx_url_parsing(value: str, uri: str | None) -> None:
    # The URL's host is the client's Host header ($http_host): never a routing host.
    facts = EXTRACTORS["ingress-nginx"]("GET", "/verify", {"X-Original-URL": value})
    assert (facts.uri, facts.host) == (uri, None)


def test_forwarded_for_uses_the_rightmost_address() -> None:
    facts = EXTRACTORS["traefik"](
        "GET", "/verify", {"X-Forwarded-For": "1.1.1.1, 10.0.0.1 ,203.0.113.9"}
    )
    assert facts.client_ip == "203.0.113.9"


def test_envoy_reads_only_the_path_under_verify() -> None:
    assert EXTRACTORS["envoy"]("GET", "/verify/books/a.jpg?s=1", {}).uri == "/books/a.jpg?s=1"
    assert EXTRACTORS["envoy"]("GET", "/verify", {"X-Original-URI": "/books/a"}).uri is None
    assert EXTRACTORS["envoy"]("GET", "/verifyx/books/a", {}).uri is None
