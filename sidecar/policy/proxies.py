"""Header profiles: which headers carry the original request, per proxy in front.

Chosen once in config (``[server] proxy``), never guessed per request: a header that the
chosen proxy does not set is ignored, however a client spells it.

- ``nginx``: ``auth_request`` with the shipped snippet: ``X-Original-URI`` ($request_uri),
  ``X-Original-Method``, ``X-Original-Host``, ``X-Real-IP``.
- ``ingress-nginx``: the ``auth-url`` annotation: ``X-Original-URL`` (a full URL),
  ``X-Original-Method``, ``X-Real-IP``. The URL's host is the client's Host header
  (``$http_host``), not the host nginx routed on, so this profile never routes by host
  and the config refuses ``hosts`` with it (docs/security.md, "Hosts").
- ``traefik``: ``forwardAuth``: ``X-Forwarded-Uri``, ``X-Forwarded-Method``,
  ``X-Forwarded-Host``, ``X-Forwarded-For`` (the address the proxy appended: rightmost).
- ``envoy``: HTTP ``ext_authz`` (e.g. Envoy Gateway): the original path and query arrive
  as the check request's own path under ``/verify``, with its method and ``Host``;
  client address from ``X-Forwarded-For`` (rightmost).
- ``caddy``: ``forward_auth`` (caddy/Caddyfile): Traefik's headers, which Caddy sets
  itself: ``X-Forwarded-Uri``, ``X-Forwarded-Method``, ``X-Forwarded-Host`` (the Host its
  site address matched) and ``X-Forwarded-For`` (the peer address, replacing the client's
  unless ``trusted_proxies`` trusts it). The auth request's own query is ignored.
- ``haproxy``: the shipped Lua action (haproxy/signed-url-auth.lua) builds the request
  from HAProxy's own fetches alone, under nginx's header names, so the client's headers
  never reach the sidecar.

Hosts and URLs go through the one parser (``sidecar.core.urls``), in one spelling (ASCII,
lowercase, one trailing dot removed, no port). A host header present but not a valid
ASCII host name makes the request non-canonical (denied), never case-folded into another.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from sidecar.core.urls import host_of, parse_url
from sidecar.errors import UrlError
from sidecar.policy.decide import RequestFacts

VERIFY_PATH: Final = "/verify"
PROFILES = ("nginx", "ingress-nginx", "traefik", "envoy", "caddy", "haproxy")
# The headers each profile cannot decide without: when one is missing, the proxy in front
# is likely not the one configured (a denial that is not about the signature).
# Every header a profile reads, the required ones first (then host and client address).
READ_HEADERS = {
    "nginx": ("X-Original-URI", "X-Original-Method", "X-Original-Host", "X-Real-IP"),
    "ingress-nginx": ("X-Original-URL", "X-Original-Method", "X-Real-IP"),
    "traefik": ("X-Forwarded-Uri", "X-Forwarded-Method", "X-Forwarded-Host", "X-Forwarded-For"),
    "envoy": ("Host", "X-Forwarded-For"),
    "caddy": ("X-Forwarded-Uri", "X-Forwarded-Method", "X-Forwarded-Host", "X-Forwarded-For"),
    "haproxy": ("X-Original-URI", "X-Original-Method", "X-Original-Host", "X-Real-IP"),
}
REQUIRED_HEADERS = {
    "nginx": ("X-Original-URI", "X-Original-Method"),
    "ingress-nginx": ("X-Original-URL", "X-Original-Method"),
    "traefik": ("X-Forwarded-Uri", "X-Forwarded-Method"),
    "envoy": (),  # the original request is the check request itself
    "caddy": ("X-Forwarded-Uri", "X-Forwarded-Method"),
    "haproxy": ("X-Original-URI", "X-Original-Method"),
}
# Where each profile finds the facts a source's rules read (sidecar/policy/rules.py): the
# client's Referer, and the country code the proxy itself set (nginx: the geoip2 module,
# through the shipped snippet). The other proxies pass the client's own headers on, so
# there X-Country-Code is trusted only where the proxy overwrites it (docs/security.md).
RULE_HEADERS = {
    "nginx": ("X-Original-Referer", "X-Country-Code"),
    "ingress-nginx": ("Referer", "X-Country-Code"),
    "traefik": ("Referer", "X-Country-Code"),
    "envoy": ("Referer", "X-Country-Code"),
    "caddy": ("Referer", "X-Country-Code"),
    "haproxy": ("X-Original-Referer", "X-Country-Code"),
}
# Profiles whose host header the client chooses: ``hosts`` would be the client's choice.
CLIENT_CHOSEN_HOST = frozenset({"ingress-nginx"})
# Profiles whose host is the proxy's own only with a setting left as it is by default.
HOST_TRUST_NOTES = {
    "traefik": "hosts rely on X-Forwarded-Host, which Traefik sets to the host it routed on"
    " only while forwardAuth trustForwardHeader is false (its default)",
    "caddy": "hosts rely on X-Forwarded-Host, the Host Caddy's site address matched: only"
    " with forward_auth in site blocks that name their hosts (never a catch-all such as :80)"
    " and no trusted_proxies (its default), or Caddy passes the client's own X-Forwarded-Host",
    "haproxy": "hosts rely on X-Original-Host, the Host header the shipped Lua sends: only"
    " when haproxy.cfg runs the action after routing on that host (as the shipped one does)",
}

# A plain dict (what the reader builds): mypyc reads it without a method lookup per header.
Extractor = Callable[[str, str, dict[str, str]], RequestFacts]
_new: Final = tuple.__new__


def _host(value: str | None) -> tuple[str | None, bool]:
    """The host in its one spelling, and whether the header was acceptable: absent or
    empty is no host; anything but a valid ASCII host name is refused."""
    if not value:
        return None, True
    known = _HOSTS_SEEN.get(value)
    if known is None:
        host = host_of(value)
        known = (host, host is not None)
        if len(_HOSTS_SEEN) >= _MAX_HOSTS_SEEN:  # a client may send any: stay bounded
            _HOSTS_SEEN.clear()
        _HOSTS_SEEN[value] = known
    return known


# The same few host headers arrive on nearly every request: their spelling is worked out
# once (a pure function of the header, so remembering it changes no answer).
_HOSTS_SEEN: Final[dict[str, tuple[str | None, bool]]] = {}
_MAX_HOSTS_SEEN: Final = 1024


def _rightmost(forwarded_for: str | None) -> str | None:
    if not forwarded_for:
        return None
    return forwarded_for.rpartition(",")[2].strip() or None


def _nginx(method: str, path: str, headers: dict[str, str]) -> RequestFacts:
    host, host_ok = _host(headers.get("X-Original-Host"))
    # The profile nearly every deployment runs: the facts in field order, built without
    # the NamedTuple's Python-level __new__ (uri, method, host, client_ip, cookies, host_ok,
    # referrer, country).
    uri, original_method = headers.get("X-Original-URI"), headers.get("X-Original-Method")
    client_ip, cookies = headers.get("X-Real-IP"), headers.get("Cookie")
    referrer, country = headers.get("X-Original-Referer"), headers.get("X-Country-Code")
    return _new(
        RequestFacts,
        (uri, original_method, host, client_ip, cookies, host_ok, referrer, country),
    )


def _ingress_nginx(method: str, path: str, headers: dict[str, str]) -> RequestFacts:
    try:
        url = parse_url(headers.get("X-Original-URL") or "", require_absolute=True)
    except UrlError:
        url = None
    return RequestFacts(
        uri=url.uri if url else None,  # None: denied as non-canonical
        method=headers.get("X-Original-Method"),
        host=None,  # the client's own Host header: never routed on (CLIENT_CHOSEN_HOST)
        client_ip=headers.get("X-Real-IP"),
        cookies=headers.get("Cookie"),
        referrer=headers.get("Referer"),
        country=headers.get("X-Country-Code"),
    )


def _traefik(method: str, path: str, headers: dict[str, str]) -> RequestFacts:
    host, host_ok = _host(headers.get("X-Forwarded-Host"))
    return RequestFacts(
        uri=headers.get("X-Forwarded-Uri"),
        method=headers.get("X-Forwarded-Method"),
        host=host,
        client_ip=_rightmost(headers.get("X-Forwarded-For")),
        cookies=headers.get("Cookie"),
        host_ok=host_ok,
        referrer=headers.get("Referer"),
        country=headers.get("X-Country-Code"),
    )


def _envoy(method: str, path: str, headers: dict[str, str]) -> RequestFacts:
    uri = path[len(VERIFY_PATH) :] if path.startswith(VERIFY_PATH + "/") else None
    host, host_ok = _host(headers.get("Host"))
    return RequestFacts(
        uri=uri,
        method=method,
        host=host,
        client_ip=_rightmost(headers.get("X-Forwarded-For")),
        cookies=headers.get("Cookie"),
        host_ok=host_ok,
        referrer=headers.get("Referer"),
        country=headers.get("X-Country-Code"),
    )


EXTRACTORS: Final[dict[str, Extractor]] = {
    "nginx": _nginx,
    "ingress-nginx": _ingress_nginx,
    "traefik": _traefik,
    "envoy": _envoy,
    "caddy": _traefik,  # the same headers, set by Caddy itself
    "haproxy": _nginx,  # the same headers, set by the shipped Lua from HAProxy's fetches
}
