"""What a revocation request names, worked out from the config (pure: the CLI, the
signing API and the console write the record it returns to the store).

A URL (or a cookie grant, with a URL it opens) is revoked by the grant it carries: the
URL is verified by its source, as ``/verify`` would, so only a grant that verifies can be
revoked, and every spelling of it is then refused (one grant, one identity). A key or a
path prefix is revoked by name, within one source.
"""

from __future__ import annotations

from sidecar.core import canonical
from sidecar.core.urls import parse_url
from sidecar.errors import RevokeError, UrlError
from sidecar.policy.revocations import Kind, Revocation, grant_digest, new_revocation, within
from sidecar.policy.routing import Router
from sidecar.policy.settings import Mode, Settings, SourceSettings
from sidecar.schemes.base import VerifyRequest


def revoke_url(
    settings: Settings,
    url: str,
    *,
    now: float,
    until: float | None = None,
    cookies: str | None = None,
    client_ip: str | None = None,
    host: str | None = None,
    only_source: str | None = None,
) -> Revocation:
    """The revocation of the grant ``url`` (or ``cookies``, for ``url``) carries, until
    ``until`` or else the grant's own expiry. ``only_source``: the grant must belong to it
    (a team revokes only its own source's grants)."""
    try:
        parsed = parse_url(url)
    except UrlError as error:
        raise RevokeError(f"not a URL: {error}") from None
    uri = canonical.parse(parsed.uri)
    if uri is None:
        raise RevokeError("the URL is not canonical: /verify refuses it already")
    source = Router(settings.sources).route(parsed.host or host, uri.path)
    if source is None or (only_source is not None and source.name != only_source):
        raise RevokeError("no source of this config serves that URL")
    if source.signatures is None or source.mode is Mode.OFF:
        raise RevokeError(f"source '{source.name}' does not verify grants (mode = off)")
    request = VerifyRequest(uri, now, settings.server.clock_skew, client_ip, cookies,
                            parsed.host or host)  # fmt: skip
    verdict = source.signatures.verify(request)
    if not verdict.valid:
        raise RevokeError(
            f"the URL carries no grant of source '{source.name}' that verifies now "
            f"({verdict.reason.value}): nothing to revoke"
        )
    ends = until if until is not None else verdict.expires_at
    digest = grant_digest(verdict.grant).hex()
    return new_revocation(source.name, Kind.GRANT, digest, _future(ends, now), now)


def revoke_key(
    settings: Settings, source_name: str, key_id: str, *, now: float, until: float | None = None
) -> Revocation:
    source = _source(settings, source_name)
    held = source.signatures.key_ids if source.signatures is not None else ()
    if key_id not in held:
        raise RevokeError(f"source '{source_name}' holds no key '{key_id}'")
    return new_revocation(source.name, Kind.KEY, key_id, _future(until, now), now)


def revoke_prefix(
    settings: Settings, source_name: str, prefix: str, *, now: float, until: float | None = None
) -> Revocation:
    source = _source(settings, source_name)
    if not canonical.is_canonical_path(prefix):
        raise RevokeError("a prefix must be a canonical path starting with /")
    if not within(prefix, source.path_prefix.rstrip("/") or "/"):
        raise RevokeError(
            f"the prefix must lie under the source's path_prefix {source.path_prefix}"
        )
    return new_revocation(source.name, Kind.PREFIX, prefix, _future(until, now), now)


def _source(settings: Settings, name: str) -> SourceSettings:
    source = settings.source(name)
    if source is None:
        raise RevokeError(f"no source named '{name}'")
    return source


def _future(until: float | None, now: float) -> float | None:
    if until is not None and until <= now:
        raise RevokeError("the grant has already ended: nothing to revoke")
    return until
