"""Header profiles: which headers carry the original request, per proxy in front.

Chosen once in config (``[server] proxy``), never guessed per request: a header that the
chosen proxy does not set is ignored, however a client spells it.

- ``nginx``: ``auth_request`` with the shipped snippet: ``X-Original-URI`` ($request_uri),
  ``X-Original-Method``, ``X-Original-Host``, ``X-Real-IP``.
- ``ingress-nginx``: the ``auth-url`` annotation: ``X-Original-URL`` (a full URL),
  ``X-Original-Method``, ``X-Real-IP``.
- ``traefik``: ``forwardAuth``: ``X-Forwarded-Uri``, ``X-Forwarded-Method``,
  ``X-Forwarded-Host``, ``X-Forwarded-For`` (the address the proxy appended: rightmost).
- ``envoy``: HTTP ``ext_authz`` (e.g. Envoy Gateway): the original path and query arrive
  as the check request's own path under ``/verify``, with its method and ``Host``;
  client address from ``X-Forwarded-For`` (rightmost).

Hosts and URLs go through the one parser (``sidecar.core.urls``): a host that is not a
valid ASCII host name is no host at all, never case-folded into another one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sidecar.core.urls import host_of, parse_url
from sidecar.errors import UrlError
from sidecar.policy.decide import RequestFacts

VERIFY_PATH = "/verify"
PROFILES = ("nginx", "ingress-nginx", "traefik", "envoy")

Extractor = Callable[[str, str, Mapping[str, str]], RequestFacts]


def _rightmost(forwarded_for: str | None) -> str | None:
    if not forwarded_for:
        return None
    return forwarded_for.rpartition(",")[2].strip() or None


def _nginx(method: str, path: str, headers: Mapping[str, str]) -> RequestFacts:
    return RequestFacts(
        uri=headers.get("X-Original-URI"),
        method=headers.get("X-Original-Method"),
        host=host_of(headers.get("X-Original-Host")),
        client_ip=headers.get("X-Real-IP"),
        cookies=headers.get("Cookie"),
    )


def _ingress_nginx(method: str, path: str, headers: Mapping[str, str]) -> RequestFacts:
    try:
        url = parse_url(headers.get("X-Original-URL") or "", require_absolute=True)
    except UrlError:
        url = None
    return RequestFacts(
        uri=url.uri if url else None,  # None: denied as non-canonical
        method=headers.get("X-Original-Method"),
        host=url.host if url else None,
        client_ip=headers.get("X-Real-IP"),
        cookies=headers.get("Cookie"),
    )


def _traefik(method: str, path: str, headers: Mapping[str, str]) -> RequestFacts:
    return RequestFacts(
        uri=headers.get("X-Forwarded-Uri"),
        method=headers.get("X-Forwarded-Method"),
        host=host_of(headers.get("X-Forwarded-Host")),
        client_ip=_rightmost(headers.get("X-Forwarded-For")),
        cookies=headers.get("Cookie"),
    )


def _envoy(method: str, path: str, headers: Mapping[str, str]) -> RequestFacts:
    uri = path[len(VERIFY_PATH) :] if path.startswith(VERIFY_PATH + "/") else None
    return RequestFacts(
        uri=uri,
        method=method,
        host=host_of(headers.get("Host")),
        client_ip=_rightmost(headers.get("X-Forwarded-For")),
        cookies=headers.get("Cookie"),
    )


EXTRACTORS: dict[str, Extractor] = {
    "nginx": _nginx,
    "ingress-nginx": _ingress_nginx,
    "traefik": _traefik,
    "envoy": _envoy,
}
