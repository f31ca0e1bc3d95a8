"""``sidecar.core.urls``: the one URL parser (signing API, CLI, header profiles, schemes)."""

from __future__ import annotations

import pytest

from sidecar.core.urls import Url, config_host, host_of, is_origin, normalise_host_name, parse_url
from sidecar.errors import SidecarError, UrlError

H = "img.example.com"


@pytest.mark.parametrize(
    ("text", "origin", "host", "port", "uri"),
    [
        ("/books/a.jpg?w=1", "", None, None, "/books/a.jpg?w=1"),
        (f"https://{H}/a.jpg", f"https://{H}", H, None, "/a.jpg"),
        (f"http://{H}:8080/a?b", f"http://{H}:8080", H, 8080, "/a?b"),
        ("HTTPS://IMG.Example.COM/a", "HTTPS://IMG.Example.COM", H, None, "/a"),
        (f"http://{H}./a", f"http://{H}.", H, None, "/a"),
        ("http://[::1]:8080/books/a.jpg", "http://[::1]:8080", "::1", 8080, "/books/a.jpg"),
        ("http://[2001:DB8:0:0::1]/a", "http://[2001:DB8:0:0::1]", "2001:db8::1", None, "/a"),
        ("http://[::ffff:192.0.2.1]/a", "http://[::ffff:192.0.2.1]", "::ffff:c000:201", None, "/a"),
        ("http://192.0.2.1:65535/a", "http://192.0.2.1:65535", "192.0.2.1", 65535, "/a"),
        (f"https://{H}/a?next=http://x/y", f"https://{H}", H, None, "/a?next=http://x/y"),
    ],
)
def test_parses(text: str, origin: str, host: str | None, port: int | None, uri: str) -> None:
    assert parse_url(text) == Url(origin, host, port, uri)


def test_ipv6_literal_keeps_its_brackets_in_the_origin_and_scheme_is_lowercased() -> None:
    # The CLI once returned host "[" for this URL.
    url = parse_url("HTTP://[::1]:8080/books/a.jpg")
    assert (url.host, url.port, url.scheme, url.origin) == (
        "::1",
        8080,
        "http",
        "HTTP://[::1]:8080",
    )


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("https://user@img.example.com/a", "user information"),
        ("https://user:pw@img.example.com/a", "user information"),
        ("https://img.example.com@evil.example/a", "user information"),
        ("https://img.example.com/a#frag", "fragment"),
        ("/a#frag", "fragment"),
        ("ftp://img.example.com/a", "absolute"),
        ("img.example.com/a", "absolute"),
        ("", "absolute"),
        ("https://img.example.com", "no path"),
        ("https://img.example.com?x=1", "no path"),
        ("https:///a", "host"),
        ("https://img.example.com:0/a", "port"),
        ("https://img.example.com:65536/a", "port"),
        ("https://img.example.com:080/a", "port"),
        ("https://img.example.com:/a", "port"),
        ("https://img.example.com:8a/a", "port"),
        ("https://img.example.com:+80/a", "port"),
        ("https://img.example.com:\u0668\u0660/a", "port"),  # Arabic-Indic digits
        ("http://[::1/a", "IPv6"),
        ("http://[::1]x/a", "port"),
        ("http://[not-v6]/a", "IPv6"),
        ("http://[fe80::1%25eth0]/a", "IPv6"),
        ("http://::1/a", "host"),
        ("http://img_example.com/a", "host"),
        ("http://-img.example.com/a", "host"),
        ("http://img..example.com/a", "host"),
        ("http://img.example.com../a", "host"),
        ("http://static.\u212aodak.com/a", "ASCII"),  # KELVIN SIGN lowercases to "k"
        ("http://ex\u0131mple.com/a", "ASCII"),  # dotless i
        ("http://" + "a" * 64 + ".com/a", "host"),
        ("http://" + ("a" * 60 + ".") * 5 + "com/a", "host"),
    ],
)
def test_refuses(text: str, why: str) -> None:
    with pytest.raises(UrlError, match=why):
        parse_url(text)


def test_require_absolute_refuses_a_path() -> None:
    with pytest.raises(UrlError, match="absolute"):
        parse_url("/books/a.jpg", require_absolute=True)


def test_url_errors_belong_to_the_one_exception_tree() -> None:
    with pytest.raises(SidecarError):
        parse_url("https://u@h/a")
    assert issubclass(UrlError, ValueError)


@pytest.mark.parametrize(
    ("value", "host"),
    [
        ("image.example.com", "image.example.com"),
        ("IMAGE.Example.com", "image.example.com"),
        ("image.example.com.", "image.example.com"),
        ("image.example.com:8080", "image.example.com"),
        ("image.example.com.:443", "image.example.com"),
        ("[::1]", "::1"),
        ("[::1]:8080", "::1"),
        ("127.0.0.1:80", "127.0.0.1"),
        (None, None),
        ("", None),
        ("static.\u212aodak.com", None),
        ("image.example.com..", None),
        ("image example.com", None),
        ("image.example.com:port", None),
        ("image.example.com:80:80", None),
        ("[::1", None),
        ("user@image.example.com", None),
    ],
)
def test_host_of_a_host_header(value: str | None, host: str | None) -> None:
    assert host_of(value) == host


def test_normalise_host_name_removes_one_trailing_dot_only() -> None:
    assert normalise_host_name("A.example.") == "a.example"
    with pytest.raises(UrlError):
        normalise_host_name("a.example..")


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("https://cdn.example.com", True),
        ("http://cdn.example.com:8443", True),
        ("https://cdn.example.com/", False),
        ("https://cdn.example.com/acme", False),
        ("https://u@cdn.example.com", False),
        ("cdn.example.com", False),
        ("https://cdn.example.com?x", False),
    ],
)
def test_is_origin(text: str, ok: bool) -> None:
    assert is_origin(text) is ok


@pytest.mark.parametrize(
    ("text", "host"),
    [
        ("image.example.com", "image.example.com"),
        ("Image.Example.COM", "image.example.com"),
        ("192.0.2.1", "192.0.2.1"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("[2001:DB8::0:1]", "2001:db8::1"),
        ("image.example.com.", None),  # requests drop the dot: the config must not carry it
        ("image.example.com:443", None),
        ("static.\u212aodak.com", None),
        ("*.example.com", None),
        ("", None),
        ("[::1]:80", None),
    ],
)
def test_config_host(text: str, host: str | None) -> None:
    assert config_host(text) == host
