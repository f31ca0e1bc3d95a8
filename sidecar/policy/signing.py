"""Sign a URL for a source, the one entry point over every scheme (no server needed).

Used by the signing API, the CLI and applications that sign in-process. It refuses what
would never verify: a URL that is not canonical, too long, or owned by another source.
"""

from __future__ import annotations

from dataclasses import replace

from sidecar.core import canonical
from sidecar.core.urls import parse_url
from sidecar.errors import SchemeError, SigningError, UrlError
from sidecar.policy.routing import Router
from sidecar.policy.settings import Settings, SourceSettings
from sidecar.schemes.base import Grant, Signed, SignRequest

MAX_URL_LENGTH = 8192
# The signing API's wire contract, shared with ``sidecar.client``.
API_KEY_HEADER = "X-Api-Key"
MAX_BATCH = 100


def sign_url(
    settings: Settings,
    source_name: str,
    url: str,
    *,
    now: float,
    expires_in: int | None = None,
    require_absolute: bool = False,
    not_before: int | None = None,
    client_ip: str | None = None,
    resource: str | None = None,
    prefix: str | None = None,
    router: Router | None = None,
) -> str:
    """The signed URL; ``not_before``, ``client_ip``, ``resource`` and ``prefix`` are for
    schemes whose signatures can carry them (a scheme refuses what it cannot). A running
    service passes its compiled ``router``; without one, it is built from ``settings``."""
    grant = Grant(None, not_before, client_ip, resource, prefix)
    return sign(settings, source_name, url, grant, now=now, expires_in=expires_in,
                require_absolute=require_absolute, router=router).url  # fmt: skip


def sign(
    settings: Settings,
    source_name: str,
    url: str,
    grant: Grant,
    *,
    now: float,
    expires_in: int | None = None,
    require_absolute: bool = False,
    router: Router | None = None,
) -> Signed:
    """Sign ``url`` with ``grant``, its expiry set from ``expires_in`` (or the source's
    ``default_ttl``) counted from ``now``; ``SigningError`` says why not."""
    source = settings.source(source_name)
    if source is None:
        raise SigningError(f"no source named '{source_name}'")
    lifetime = _lifetime(source, expires_in)
    request = _owned_request(router or Router(settings.sources), source, url, require_absolute)
    if source.signatures is None:
        raise SigningError(f"source '{source.name}' has no keys to sign with")
    expires = int(now) + lifetime if lifetime is not None else None
    request = request._replace(grant=replace(grant, expires=expires), now=int(now))
    try:
        return source.signatures.sign(request)
    except SchemeError as error:
        raise SigningError(str(error)) from None


def _lifetime(source: SourceSettings, expires_in: int | None) -> int | None:
    if expires_in is None:
        # max_ttl is enforced on verify: a source with one never signs URLs without expiry.
        return source.default_ttl or source.max_ttl
    if expires_in < 1:
        raise SigningError("expiresIn must be a positive number of seconds")
    if source.max_ttl is not None and expires_in > source.max_ttl:
        raise SigningError(f"expiresIn must not exceed {source.max_ttl} seconds")
    return expires_in


def sign_request(
    url: str, grant: Grant, *, require_absolute: bool = False, now: int | None = None
) -> SignRequest:
    """A URL to sign at ``now``, parsed once by the one URL parser and checked canonical,
    for any scheme's ``sign``; ``SigningError`` when it could never verify."""
    if len(url) > MAX_URL_LENGTH:
        raise SigningError(f"URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parsed = parse_url(url, require_absolute=require_absolute)
    except UrlError as error:
        raise SigningError(str(error)) from None
    uri = canonical.parse(parsed.uri)
    if uri is None:
        raise SigningError("URL is not canonical")
    return SignRequest(parsed, uri, grant, now)


def _owned_request(router: Router, source: SourceSettings, url: str, absolute: bool) -> SignRequest:
    request = sign_request(url, Grant(), require_absolute=absolute)
    owner = router.route(request.url.host, request.uri.path)
    if owner is None or owner.name != source.name:
        raise SigningError(f"URL is outside source '{source.name}'")
    return request
