"""The decision for one verify request: pure, from request facts and the clock.

Deny by default: an answer is 200 only when a source owns the canonical path and either
its signature verifies (and its rules, if any, hold), or the source is in ``report`` or
``off`` mode, or in ``optional`` mode and the request carries no signature.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, NamedTuple

from sidecar.core import canonical
from sidecar.core.verdict import Reason, Verdict, deny
from sidecar.policy.folder_grants import FolderGrant, folder_grant
from sidecar.policy.revocations import RevokedView
from sidecar.policy.routing import Router
from sidecar.policy.settings import Mode, Settings, SourceSettings
from sidecar.schemes.base import VerifyRequest

ALLOWED_METHODS: Final = frozenset({"GET", "HEAD"})
NO_SOURCE: Final = "-"  # names the source of a request no source owns (source names cannot be "-")


class Outcome(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    WOULD_DENY = "would_deny"  # report mode: allowed, but enforce would have denied


class RequestFacts(NamedTuple):
    uri: str | None
    method: str | None
    host: str | None = None
    client_ip: str | None = None
    cookies: str | None = None  # the Cookie header, where the proxy profile passes it
    host_ok: bool = True  # false: a host header that is not a valid ASCII host name
    referrer: str | None = None  # the client's Referer, for sources with rules
    country: str | None = None  # the country code the proxy found for the client


class Decision(NamedTuple):
    status: int
    reason: Reason
    outcome: Outcome
    source: SourceSettings | None = None
    key_id: str | None = None
    cache_ttl: int = 0  # seconds nginx may cache this answer; 0 = never
    # An allow of a source with max_uses carries its verdict (the grant and its expiry):
    # final only once the store has counted the use (runtime/uses.py); until then it is
    # neither answered nor counted in the metrics.
    counted: Verdict | None = None
    # A URL-signed allow of a folder_grant file: the cookie grant its answer carries.
    folder: FolderGrant | None = None


# Builds a NamedTuple without its Python-level __new__ (a frame per request saved): used
# on the allow path, which nearly every request takes, with every field given.
_new: Final = tuple.__new__
# An enum member read off its class goes through EnumType's __getattr__ hook (about 90 ns
# each); module constants are read from a C static once compiled. The allow path's:
_OK: Final = Reason.OK
_ALLOW: Final = Outcome.ALLOW
_OFF: Final = Mode.OFF


class Decider:
    """The settings compiled for fast decisions."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.router = Router(settings.sources)
        # Grants taken back: None without [state], so a config without one pays nothing;
        # else the view the background sync keeps current (runtime/revocation_sync.py).
        self.revocations: RevokedView | None = None

    def decide(self, facts: RequestFacts, now: float) -> Decision:
        server = self.settings.server
        uri = canonical.parse(facts.uri) if facts.uri and facts.host_ok else None
        if uri is None:
            return Decision(server.deny_status, Reason.NON_CANONICAL, Outcome.DENY)
        source = self.router.route(facts.host, uri.path)
        if source is None:
            return Decision(server.deny_status, Reason.NO_SOURCE, Outcome.DENY)
        if source.mode is _OFF:
            if facts.method not in ALLOWED_METHODS:
                return Decision(source.deny_status, Reason.METHOD, Outcome.DENY, source)
            return Decision(200, Reason.UNSIGNED_ALLOWED, Outcome.ALLOW, source)
        assert source.signatures is not None  # guaranteed by config for enforce/report
        if facts.method not in ALLOWED_METHODS:
            verdict = Verdict(Reason.METHOD)
        else:
            request = _new(
                VerifyRequest,
                (
                    uri,
                    now,
                    server.clock_skew,
                    facts.client_ip,
                    facts.cookies,
                    facts.host,
                    facts.country,
                ),
            )
            verdict = _within_max_ttl(source, source.signatures.verify(request), request)
            revocations = self.revocations
            if (
                revocations is not None
                and verdict.reason is _OK
                and revocations.revoked(source.name, verdict, uri.path, now)
            ):
                verdict = deny(Reason.REVOKED)
        valid = verdict.reason is _OK
        if valid and source.folder_grant and uri.raw_path.endswith(source.folder_grant):
            return _granting(source, verdict, request, facts)
        if valid and source.rules is None and source.uses is None:
            ttl = _cache_ttl(verdict, server.cache_ttl, now)
            return _new(Decision, (200, _OK, _ALLOW, source, verdict.key_id, ttl, None, None))
        if valid or (source.mode is Mode.OPTIONAL and verdict.reason is Reason.MISSING):
            return _ruled(source, verdict, facts)
        return _denied(source, verdict.reason)


def _denied(source: SourceSettings, reason: Reason) -> Decision:
    if source.mode is Mode.REPORT:
        return Decision(200, reason, Outcome.WOULD_DENY, source)
    return Decision(source.deny_status, reason, Outcome.DENY, source)


def _ruled(source: SourceSettings, verdict: Verdict, facts: RequestFacts) -> Decision:
    """An allow (a valid grant, or no grant at all on an ``optional`` source) once the
    source's rules hold. It is never shared through the auth cache: it depends on the
    Referer, the client's address or country, none of which the cache key holds, or on
    how often the grant was used."""
    if source.rules is not None:
        refused = source.rules.refusal(facts.referrer, facts.client_ip, facts.country)
        if refused is not None:
            return _denied(source, refused)
    if verdict.valid:
        counted = verdict if source.uses is not None else None
        return Decision(200, Reason.OK, Outcome.ALLOW, source, verdict.key_id, 0, counted)
    return Decision(200, Reason.UNSIGNED_ALLOWED, Outcome.ALLOW, source)


def _granting(
    source: SourceSettings, verdict: Verdict, request: VerifyRequest, facts: RequestFacts
) -> Decision:
    """An allow of a ``folder_grant`` file (never cached: the cookie it may carry is
    for this client alone), with the folder its URL grants."""
    decision = _ruled(source, verdict, facts)
    if decision.status != 200 or decision.reason is not Reason.OK:
        return decision
    return decision._replace(folder=folder_grant(source, verdict, request))


def _within_max_ttl(source: SourceSettings, verdict: Verdict, request: VerifyRequest) -> Verdict:
    """A source's ``max_ttl`` holds on verify too: a leaked key must not mint URLs valid
    for decades. A grant that never expires exceeds any ``max_ttl`` (``missing``: the
    expiry is); one that ends further away than ``max_ttl`` (+ skew) is ``invalid``."""
    if source.max_ttl is None or verdict.reason is not _OK:
        return verdict
    if verdict.expires_at is None:
        return deny(Reason.MISSING)
    if verdict.expires_at - request.now > source.max_ttl + request.clock_skew:
        return deny(Reason.INVALID)
    return verdict


def _cache_ttl(verdict: Verdict, ceiling: int, now: float) -> int:
    """How long nginx may reuse this allow: never past the grant's own expiry, and never
    when the allow may not be shared (bound to the client's address, or won by a cookie)."""
    if not verdict.shareable:
        return 0
    if verdict.expires_at is None:
        return ceiling
    return max(0, min(ceiling, int(verdict.expires_at - now)))
