"""Header profiles (``[server] proxy``): how each extractor reads its proxy's headers.

The same profiles against the real sidecar process: ``tests/process/test_proxies.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar import config
from sidecar.cli import main
from sidecar.errors import ConfigError
from sidecar.policy.proxies import EXTRACTORS
from tests.support.config_files import write
from tests.support.configs import md5_source, sidecar_config

BOOKS_TOKEN = "books-token-0123"


def hosted_books(proxy: str) -> str:
    """One md5-token source bound to a host, behind ``proxy``'s profile."""
    books = md5_source("books", "/books/", {"k": BOOKS_TOKEN}, hosts=["a.example"])
    return sidecar_config(books, server={"proxy": proxy})


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


# --- hosts only where the proxy routed on them ------------------------------------------------


def test_ingress_nginx_profile_refuses_hosts(tmp_path: Path) -> None:
    # ingress-nginx builds X-Original-URL from the client's Host header.
    path = write(tmp_path, hosted_books("ingress-nginx"))
    with pytest.raises(ConfigError) as caught:
        config.load(path, environ={})
    assert any("'books'.hosts" in p and "$http_host" in p for p in caught.value.problems)


def test_ingress_nginx_profile_never_routes_on_the_url_host() -> None:
    facts = EXTRACTORS["ingress-nginx"](
        "GET", "/verify", {"X-Original-URL": "http://tenant.example.com/books/a.jpg"}
    )
    assert (facts.uri, facts.host) == ("/books/a.jpg", None)


def test_traefik_hosts_name_the_setting_that_makes_them_safe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, hosted_books("traefik"))
    assert main(["check-config", "-c", str(path)]) == 0
    assert "trustForwardHeader is false" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("proxy", "setting"),
    [("caddy", "site blocks that name their hosts"), ("haproxy", "after routing on that host")],
)
def test_caddy_and_haproxy_hosts_name_what_makes_them_safe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], proxy: str, setting: str
) -> None:
    path = write(tmp_path, hosted_books(proxy))
    assert main(["check-config", "-c", str(path)]) == 0
    assert setting in capsys.readouterr().out


def test_caddy_reads_the_headers_caddy_sets_and_haproxy_the_luas() -> None:
    caddy = EXTRACTORS["caddy"](
        "GET",
        "/verify?s=client-chosen",  # forward_auth's auth request keeps the client's query
        {
            "X-Forwarded-Uri": "/books/a.jpg?w=1",
            "X-Forwarded-Method": "HEAD",
            "X-Forwarded-Host": "IMAGE.example.com:8443",
            "X-Forwarded-For": "203.0.113.9",
            "X-Original-URI": "/spoofed",
            "X-Real-IP": "198.51.100.1",
        },
    )
    assert (caddy.uri, caddy.method, caddy.host, caddy.client_ip) == (
        "/books/a.jpg?w=1", "HEAD", "image.example.com", "203.0.113.9")  # fmt: skip
    haproxy = EXTRACTORS["haproxy"](
        "GET",
        "/verify",
        {
            "X-Original-URI": "/books/a.jpg",
            "X-Original-Method": "GET",
            "X-Original-Host": "image.example.com",
            "X-Real-IP": "203.0.113.9",
            "X-Forwarded-Uri": "/spoofed",
        },
    )
    assert (haproxy.uri, haproxy.host, haproxy.client_ip) == (
        "/books/a.jpg", "image.example.com", "203.0.113.9")  # fmt: skip
