"""The one URL parser: URLs to sign, URLs a proxy passes, and Host-style values.

RFC 3986 §3.2 for the authority. One spelling of a host (docs/security.md, "Hosts"): ASCII,
lowercase, one trailing dot removed, no port; IPv6 literals in brackets (``[::1]:8080``), kept
without them in their compressed form. Refused: userinfo (``user@host``, a classic way to
make a URL look like another host), fragments (never sent to a server), schemes other
than http and https, ports outside 1..65535, and any character a host name cannot hold.
"""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple

from sidecar.errors import UrlError

SCHEMES = ("http", "https")
# A DNS name as nginx and the config accept it: letters, digits and inner hyphens per
# label (RFC 1123), at most 253 characters.
HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")
_MAX_HOST = 253
_PORT = re.compile(r"[1-9][0-9]{0,4}")


class Url(NamedTuple):
    """A parsed URL. ``origin`` is ``scheme://authority`` as given ("" for a path-only
    URL); ``host`` is in its one spelling (None for a path-only URL); ``uri`` is the
    origin-form request URI (path and query) exactly as given."""

    origin: str
    host: str | None
    port: int | None
    uri: str

    @property
    def scheme(self) -> str:
        return self.origin.partition("://")[0].lower()


def parse_url(text: str, *, require_absolute: bool = False) -> Url:
    """Parse an absolute ``http(s)://host[:port]/path[?query]`` or a path-only ``/path``."""
    if "#" in text:
        raise UrlError("URL must not carry a fragment ('#')")
    if text.startswith("/"):
        if require_absolute:
            raise UrlError("URL must be absolute (https://host/path)")
        return Url("", None, None, text)
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise UrlError("URL must be absolute (http/https) or start with '/'")
    end = len(rest)
    for mark in "/?":
        found = rest.find(mark)
        if found != -1:
            end = min(end, found)
    authority, uri = rest[:end], rest[end:]
    if not uri.startswith("/"):
        raise UrlError("URL has no path (it must have '/' after the host)")
    host, port = parse_authority(authority)
    return Url(f"{scheme}://{authority}", host, port, uri)


def parse_authority(authority: str) -> tuple[str, int | None]:
    """``host[:port]`` → the host in its one spelling and the port, or ``UrlError``."""
    if "@" in authority:
        raise UrlError("URL must not carry user information ('user@')")
    if authority.startswith("["):
        literal, bracket, after = authority[1:].partition("]")
        if not bracket:
            raise UrlError("IPv6 literal without its closing ']'")
        host = _ipv6(literal)
        port_text = after
    else:
        name, colon, port = authority.partition(":")
        host = normalise_host_name(name)
        port_text = colon + port
    if not port_text:
        return host, None
    if not port_text.startswith(":") or not _PORT.fullmatch(port_text[1:]):
        raise UrlError("port must be a number 1..65535")
    number = int(port_text[1:])
    if number > 65535:
        raise UrlError("port must be a number 1..65535")
    return host, number


def normalise_host_name(name: str) -> str:
    """A DNS name or IPv4 address in its one spelling: ASCII, lowercase, one trailing dot
    removed. Non-ASCII is refused before lowercasing, so no Unicode case folding (``K``,
    KELVIN SIGN, into ``k``) can turn one host into another."""
    if not name.isascii():
        raise UrlError("host must be ASCII (IDNA-encode it first)")
    host = name.lower()
    if host.endswith("."):
        host = host[:-1]
    if not host or len(host) > _MAX_HOST or not HOST_NAME.fullmatch(host):
        raise UrlError("host is not a valid host name")
    return host


def config_host(text: str) -> str | None:
    """A ``hosts`` entry of the config in the spelling requests are routed on: a DNS name
    or IPv4 address (ASCII, lowercased; no port, no trailing dot), or an IPv6 literal with
    or without its brackets (compressed). None for anything else."""
    literal = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    if ":" in literal:
        try:
            return _ipv6(literal)
        except UrlError:
            return None
    host = text.lower()
    valid = text.isascii() and len(host) <= _MAX_HOST and HOST_NAME.fullmatch(host)
    return host if valid else None


def host_of(value: str | None) -> str | None:
    """The host of a Host-style header value (``name[:port]``, ``[v6][:port]``), in its one
    spelling; None when the value is absent or not a valid host."""
    if not value:
        return None
    try:
        return parse_authority(value)[0]
    except UrlError:
        return None


def _ipv6(literal: str) -> str:
    if "%" in literal or not literal.isascii():  # zone ids mean nothing to a server
        raise UrlError("not a valid IPv6 literal")
    try:
        return str(ipaddress.IPv6Address(literal))
    except ValueError:
        raise UrlError("not a valid IPv6 literal") from None


def is_origin(text: str) -> bool:
    """True for ``http(s)://host[:port]`` with nothing after it (a ``public_origin``)."""
    try:
        url = parse_url(text + "/", require_absolute=True)
    except UrlError:
        return False
    return url.uri == "/" and url.origin == text
