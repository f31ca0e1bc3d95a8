"""Rules beyond the signature: where a source's files may be used (docs/configuration.md,
"Rules"). All optional, per source, checked after the signature: a rule never allows what
the signature denies, and a source without rules pays nothing for them.

- ``referrers``: the ``Referer``'s origin must match one origin pattern (``*.`` stands for
  one or more labels, never the bare domain); ``allow_no_referrer`` admits requests
  without one. A ``Referer`` that is not a plain http(s) URL is refused, never read as
  "no referrer".
- ``networks``: the client address must lie in one network.
- ``countries`` / ``countries_blocked``: the ``X-Country-Code`` the proxy set; a missing or
  unreadable one is ``XX`` (unknown), so an allow list refuses it.

Pure: the referrer, client address and country are passed in.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from sidecar.core.addresses import IPNetwork, client_within
from sidecar.core.urls import SCHEMES, parse_authority, parse_url
from sidecar.core.verdict import Reason
from sidecar.errors import UrlError

UNKNOWN_COUNTRY: Final = "XX"
_COUNTRY: Final = re.compile(r"[A-Z]{2}")
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


class OriginPattern(NamedTuple):
    """``scheme://host[:port]``, the host possibly ``*.``-prefixed (then ``host`` holds the
    suffix with its leading dot)."""

    scheme: str
    host: str
    port: int
    wildcard: bool

    def matches(self, scheme: str, host: str, port: int) -> bool:
        if scheme != self.scheme or port != self.port:
            return False
        if self.wildcard:
            return host.endswith(self.host) and len(host) > len(self.host)
        return host == self.host


def origin_pattern(text: str) -> OriginPattern | None:
    """A ``referrers`` entry, or None when it is not an origin (a path, a query, userinfo,
    a wildcard anywhere but a whole leading label)."""
    scheme, sep, authority = text.partition("://")
    if not sep or scheme not in SCHEMES or not authority or any(c in authority for c in "/?#@"):
        return None
    wildcard = authority.startswith("*.")
    try:
        host, port = parse_authority(authority[2:] if wildcard else authority)
    except UrlError:
        return None
    if host is None or "*" in host or (wildcard and ":" in host):  # no wildcard IPv6
        return None
    return OriginPattern(
        scheme, "." + host if wildcard else host, port or _DEFAULT_PORTS[scheme], wildcard
    )


def network(text: str) -> IPNetwork | None:
    """A ``networks`` entry (an address or CIDR, host bits zero), or None."""
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError:
        return None


def country(text: str) -> str | None:
    """A country code in its one spelling (two capital letters), or None."""
    return text if _COUNTRY.fullmatch(text) else None


@functools.lru_cache(maxsize=1024)
def referrer_origin(value: str) -> tuple[str, str, int] | None:
    """The (scheme, host, port) of a ``Referer`` value, or None when it is not a plain
    http(s) URL (the same few pages refer to a site again and again: remembered)."""
    authority = value.partition("://")[2]
    if authority and not any(mark in authority for mark in "/?#"):
        value += "/"  # an origin alone ("https://shop.example.com") is a URL too
    try:
        url = parse_url(value, require_absolute=True)
    except UrlError:
        return None
    if url.host is None:
        return None
    scheme = url.scheme
    return scheme, url.host, url.port or _DEFAULT_PORTS[scheme]


_MAX_CLIENTS: Final = 4096


@dataclass(frozen=True, slots=True)
class Rules:
    """One source's rules; ``None`` fields are rules not set."""

    referrers: tuple[OriginPattern, ...] | None = None
    allow_no_referrer: bool = True
    networks: tuple[IPNetwork, ...] | None = None
    countries: frozenset[str] | None = None
    countries_blocked: frozenset[str] | None = None
    # Whether each client address seen lies in ``networks``: a pure function of the
    # address, and the same clients ask again and again (ipaddress's membership test is
    # Python code, about a microsecond a network). Bounded; started over when full.
    _clients: dict[str, bool] = field(default_factory=dict, repr=False, compare=False)

    def refusal(
        self, referrer: str | None, client_ip: str | None, country_code: str | None
    ) -> Reason | None:
        """The reason this request may not have the file, or None."""
        if self.referrers is not None and not self._referrer_ok(referrer):
            return Reason.REFERRER
        if self.networks is not None and not self._network_ok(client_ip):
            return Reason.NETWORK
        if self.countries is not None or self.countries_blocked is not None:
            code = country(country_code or "") or UNKNOWN_COUNTRY
            if self.countries is not None and code not in self.countries:
                return Reason.COUNTRY
            if self.countries_blocked is not None and code in self.countries_blocked:
                return Reason.COUNTRY
        return None

    def _referrer_ok(self, referrer: str | None) -> bool:
        if not referrer:
            return self.allow_no_referrer
        origin = referrer_origin(referrer)
        assert self.referrers is not None
        return origin is not None and any(pattern.matches(*origin) for pattern in self.referrers)

    def _network_ok(self, client_ip: str | None) -> bool:
        assert self.networks is not None
        if client_ip is None:
            return False  # no address is in no network (fail closed)
        known = self._clients.get(client_ip)
        if known is None:
            known = any(client_within(client_ip, net) for net in self.networks)
            if len(self._clients) >= _MAX_CLIENTS:
                self._clients.clear()
            self._clients[client_ip] = known
        return known
