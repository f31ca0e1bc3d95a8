"""Sign a URL for a source, the one entry point over every scheme (no server needed).

Used by the signing API, the CLI and applications that sign in-process. It refuses what
would never verify: a URL that is not canonical, too long, or owned by another source.
"""

from __future__ import annotations

from sidecar import canonical
from sidecar.routing import Router
from sidecar.schemes import SchemeError, split_url
from sidecar.settings import Settings, SourceSettings

MAX_URL_LENGTH = 8192


class SigningError(ValueError):
    """Why a URL cannot be signed; safe to show to the caller."""


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
    router: Router | None = None,
) -> str:
    """The signed URL; ``not_before``, ``client_ip`` and ``resource`` are for schemes
    whose signatures can carry them (``cloudfront`` custom policies). A running service
    passes its compiled ``router``; without one, it is built from ``settings``."""
    source = settings.source(source_name)
    if source is None:
        raise SigningError(f"no source named '{source_name}'")
    lifetime = _lifetime(source, expires_in)
    _check_owned(router or Router(settings.sources), source, url, require_absolute)
    if source.verifier is None:
        raise SigningError(f"source '{source.name}' has no keys to sign with")
    expires = int(now) + lifetime if lifetime is not None else None
    try:
        return source.verifier.sign(
            url, expires=expires, not_before=not_before, client_ip=client_ip, resource=resource
        )
    except SchemeError as error:
        raise SigningError(str(error)) from None


def _lifetime(source: SourceSettings, expires_in: int | None) -> int | None:
    if expires_in is None:
        return source.default_ttl
    if expires_in < 1:
        raise SigningError("expiresIn must be a positive number of seconds")
    if source.max_ttl is not None and expires_in > source.max_ttl:
        raise SigningError(f"expiresIn must not exceed {source.max_ttl} seconds")
    return expires_in


def _check_owned(router: Router, source: SourceSettings, url: str, absolute: bool) -> None:
    if len(url) > MAX_URL_LENGTH:
        raise SigningError(f"URL is longer than {MAX_URL_LENGTH} characters")
    try:
        origin, uri = split_url(url)
    except SchemeError as error:
        raise SigningError(str(error)) from None
    if absolute and not origin:
        raise SigningError("URL must be absolute (https://host/path)")
    parsed = canonical.parse(uri)
    if parsed is None:
        raise SigningError("URL is not canonical")
    authority = origin.partition("://")[2]
    if "@" in authority:
        raise SigningError("URL must not carry user information")
    host = authority.partition(":")[0].lower() or None
    owner = router.route(host, parsed.path)
    if owner is None or owner.name != source.name:
        raise SigningError(f"URL is outside source '{source.name}'")
