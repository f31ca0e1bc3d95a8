"""The contract every signing scheme keeps (docs/development.md), inherited by each scheme's tests.

Not collected by itself (no ``test_`` prefix, no ``Test`` class name): a scheme's test
module defines ``class TestX(SchemeContract)`` and fills in the hooks below. The
contract speaks only the scheme interface (``sidecar.schemes.base``), so any scheme can
reuse it, wherever its signature travels: a query parameter, a path segment after the
source's prefix, or a cookie (``Carrier``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, ClassVar, NamedTuple

from sidecar import schemes
from sidecar.core import canonical
from sidecar.core.canonical import CanonicalURI
from sidecar.core.urls import parse_url
from sidecar.core.verdict import Reason, Verdict
from sidecar.errors import SchemeError
from sidecar.policy.signing import sign_request
from sidecar.schemes.base import (
    Grant,
    KeyMaterial,
    SourceScheme,
    SourceSpec,
    VerifyRequest,
)

NOW = 1_900_000_000
LIFETIME = 3600
CLIENT_IP = "203.0.113.5"


# --- the scheme interface, as tests use it ------------------------------------------------


def build_source(
    scheme_name: str,
    keys: Sequence[KeyMaterial],
    *,
    prefix: str = "/",
    settings: Mapping[str, Any] | None = None,
) -> SourceScheme:
    """``scheme_name`` built for one source, its settings defaulted as the config would."""
    scheme = schemes.get(scheme_name)
    assert scheme is not None, scheme_name
    built, problems = scheme.settings_from(settings or {})
    if problems:
        raise SchemeError("; ".join(f"{name}: {problem}" for name, problem in problems))
    return scheme.build(SourceSpec("test", prefix, tuple(keys), built))


def sign(verifier: SourceScheme, url: str, **grant: Any) -> str:
    """The signed URL (as absolute or path-only as ``url``) for a ``Grant(**grant)``."""
    return verifier.sign(sign_request(url, Grant(**grant))).url


def request_uri(url: str) -> str:
    """The origin-form request URI of a URL (what nginx passes as ``$request_uri``)."""
    return parse_url(url).uri


def verify(
    verifier: SourceScheme,
    uri: str,
    now: float = NOW,
    *,
    skew: int = 0,
    ip: str | None = CLIENT_IP,
    cookies: str | None = None,
) -> Verdict:
    return verifier.verify(VerifyRequest(parse(uri), now, skew, ip, cookies))


def parse(uri: str) -> CanonicalURI:
    parsed = canonical.parse(uri)
    assert parsed is not None, f"test URI is not canonical: {uri!r}"
    return parsed


def _first_value_changed(uri: str) -> str:
    """``uri`` with a "1" appended to the raw value of its first query parameter."""
    first = parse(uri).params[0]
    end = first.start + len(first.raw_name) + 1 + len(first.value)
    return uri[:end] + "1" + uri[end:]


# --- where the signature travels ------------------------------------------------------------


class Carrier(StrEnum):
    QUERY = "query"  # a parameter of the query (md5-token, cloudfront, ...)
    PATH_SEGMENT = "path_segment"  # the first segment after the source's prefix (thumbor)
    COOKIE = "cookie"  # a cookie the proxy passes (signed cookies)


class Presented(NamedTuple):
    """What a client presents: the request URI and, for cookie grants, its Cookie header."""

    uri: str
    cookies: str | None = None


def signature_of(carrier: Carrier, name: str, prefix: str, presented: Presented) -> str:
    if carrier is Carrier.QUERY:
        param = parse(presented.uri).get(name)
        assert param is not None, f"{name!r} not in {presented.uri!r}"
        return param.value
    if carrier is Carrier.PATH_SEGMENT:
        return presented.uri[len(prefix) :].partition("/")[0]
    for pair in (presented.cookies or "").split(";"):
        key, _, value = pair.strip().partition("=")
        if key == name:
            return value
    raise AssertionError(f"no cookie {name!r} in {presented.cookies!r}")


def with_signature(
    carrier: Carrier, name: str, prefix: str, presented: Presented, value: str
) -> Presented:
    """``presented`` with its signature's raw text replaced by ``value``."""
    if carrier is Carrier.QUERY:
        param = parse(presented.uri).get(name)
        assert param is not None, f"{name!r} not in {presented.uri!r}"
        start = param.start + len(param.raw_name) + 1
        uri = presented.uri[:start] + value + presented.uri[start + len(param.value) :]
        return presented._replace(uri=uri)
    if carrier is Carrier.PATH_SEGMENT:
        rest = presented.uri[len(prefix) :].partition("/")[2]
        return presented._replace(uri=f"{prefix}{value}/{rest}")
    pairs = [pair.strip() for pair in (presented.cookies or "").split(";")]
    replaced = [f"{name}={value}" if pair.startswith(f"{name}=") else pair for pair in pairs]
    return presented._replace(cookies="; ".join(replaced))


# --- the contract -------------------------------------------------------------------------------


class SchemeContract:
    # --- hooks a scheme's test class provides ------------------------------------------

    #: The registered scheme name, and the source settings its tests build with.
    scheme_name: ClassVar[str]
    settings: ClassVar[Mapping[str, Any]] = {}
    #: The source's path prefix (a path-segment signature follows it).
    path_prefix: ClassVar[str] = "/books/"
    #: Where the signature travels, and its parameter or cookie name.
    carrier: ClassVar[Carrier] = Carrier.QUERY
    signature_param: ClassVar[str]
    #: A URL to sign: absolute or path-only, with a query of at least two parameters.
    unsigned_url: ClassVar[str] = "/books/database-internals.jpg?w=400&h=600&fit=crop"
    #: Signature values that are not even well-formed for this scheme.
    bad_signature_values: ClassVar[Sequence[str]]
    #: What a signature one character short is: usually malformed (exact length first).
    truncated_signature_reason: ClassVar[Reason] = Reason.MALFORMED

    @property
    def query_tampered_reason(self) -> Reason:
        """A changed query breaks a URL signature; a cookie grant covers any query."""
        return Reason.OK if self.carrier is Carrier.COOKIE else Reason.INVALID

    def key_material(self, key_id: str) -> KeyMaterial:
        """A fresh key, different on every call."""
        raise NotImplementedError

    def grant(self, expires: int) -> dict[str, Any]:
        """The ``Grant`` fields the contract signs with."""
        return {"expires": expires, "cookies": self.carrier is Carrier.COOKIE}

    # --- helpers ------------------------------------------------------------------------

    def make_verifier(self, keys: Sequence[KeyMaterial]) -> SourceScheme:
        return build_source(self.scheme_name, keys, prefix=self.path_prefix,
                            settings=self.settings)  # fmt: skip

    def sign(self, verifier: SourceScheme, *, expires: int = NOW + LIFETIME) -> Presented:
        """What a client holding ``unsigned_url`` signed by ``verifier`` presents."""
        request = sign_request(self.unsigned_url, Grant(**self.grant(expires)))
        signed = verifier.sign(request)
        cookie_header = "; ".join(cookie.partition(";")[0] for cookie in signed.cookies)
        return Presented(request_uri(signed.url), cookie_header or None)

    def verify(
        self, verifier: SourceScheme, presented: Presented, now: float = NOW, *, skew: int = 0
    ) -> Verdict:
        return verify(verifier, presented.uri, now, skew=skew, cookies=presented.cookies)

    def single(self, key_id: str = "k1") -> SourceScheme:
        return self.make_verifier([self.key_material(key_id)])

    def signature(self, presented: Presented) -> str:
        return signature_of(self.carrier, self.signature_param, self.path_prefix, presented)

    def with_signature(self, presented: Presented, value: str) -> Presented:
        return with_signature(self.carrier, self.signature_param, self.path_prefix, presented,
                              value)  # fmt: skip

    def with_uri(self, presented: Presented, uri: str) -> Presented:
        return presented._replace(uri=uri)

    # --- the contract -------------------------------------------------------------------

    def test_round_trip(self) -> None:
        verifier = self.single("k1")
        verdict = self.verify(verifier, self.sign(verifier))
        assert verdict.reason is Reason.OK
        assert verdict.key_id == "k1"
        assert verdict.expires_at == NOW + LIFETIME

    def test_an_allow_names_the_signature_it_verified_as_its_grant(self) -> None:
        # What a revocation or a use count names: the same for the same grant, and
        # another grant's for another signed URL.
        verifier = self.single("k1")
        presented = self.sign(verifier)
        first = self.verify(verifier, presented)
        assert first.grant and first.grant == self.verify(verifier, presented, NOW + 1).grant
        other = self.verify(verifier, self.sign(verifier, expires=NOW + LIFETIME - 60))
        if other.expires_at != first.expires_at:  # a scheme without expiry signs the same
            assert other.grant not in (b"", first.grant)
        assert self.verify(verifier, Presented(request_uri(self.unsigned_url))).grant == b""

    def test_signing_keeps_the_unsigned_url(self) -> None:
        # Signing only adds the signature: the resource the caller asked for is served.
        verifier = self.single()
        unsigned = request_uri(self.unsigned_url)
        signed = self.sign(verifier)
        if self.carrier is Carrier.QUERY:
            assert signed.uri.startswith(unsigned + "&")
        elif self.carrier is Carrier.PATH_SEGMENT:
            rest = unsigned[len(self.path_prefix) :]
            assert signed.uri == f"{self.path_prefix}{self.signature(signed)}/{rest}"
        else:
            assert signed.uri == unsigned and signed.cookies

    def test_unsigned_is_missing(self) -> None:
        verdict = self.verify(self.single(), Presented(request_uri(self.unsigned_url)))
        assert verdict.reason is Reason.MISSING
        assert verdict.key_id is None

    def test_tampered_path(self) -> None:
        verifier = self.single()
        signed = self.sign(verifier)
        path, _, query = signed.uri.partition("?")
        if self.carrier is Carrier.COOKIE:  # a cookie grant covers its prefix: leave it
            path = "/elsewhere/" + path[len(self.path_prefix) :]
        else:
            path = path[:-1] + ("x" if path[-1] != "x" else "y")
        tampered = self.with_uri(signed, path + "?" + query)
        assert self.verify(verifier, tampered).reason is Reason.INVALID

    def test_tampered_query_value(self) -> None:
        verifier = self.single()
        signed = self.sign(verifier)
        tampered = _first_value_changed(signed.uri)
        verdict = self.verify(verifier, self.with_uri(signed, tampered))
        assert verdict.reason is self.query_tampered_reason

    def test_added_param(self) -> None:
        verifier = self.single()
        signed = self.sign(verifier)
        path, _, query = signed.uri.partition("?")
        added = self.with_uri(signed, f"{path}?extra=1&{query}")
        assert self.verify(verifier, added).reason is self.query_tampered_reason

    def test_removed_param(self) -> None:
        verifier = self.single()
        signed = self.sign(verifier)
        path, _, query = signed.uri.partition("?")
        removed = self.with_uri(signed, f"{path}?{query.partition('&')[2]}")
        assert self.verify(verifier, removed).reason is self.query_tampered_reason

    def test_altered_signature(self) -> None:
        verifier = self.single()
        signed = self.sign(verifier)
        value = self.signature(signed)
        altered = self.with_signature(signed, ("a" if value[0] != "a" else "b") + value[1:])
        assert self.verify(verifier, altered).reason is Reason.INVALID

    def test_truncated_signature(self) -> None:
        verifier = self.single()
        signed = self.sign(verifier)
        truncated = self.with_signature(signed, self.signature(signed)[:-1])
        assert self.verify(verifier, truncated).reason is self.truncated_signature_reason

    def test_bad_signature_encodings_are_malformed(self) -> None:
        verifier = self.single()
        signed = self.sign(verifier)
        assert self.bad_signature_values, "a scheme must list some badly encoded signatures"
        for bad in self.bad_signature_values:
            verdict = self.verify(verifier, self.with_signature(signed, bad))
            assert verdict.reason is Reason.MALFORMED, bad

    def test_wrong_key_is_invalid(self) -> None:
        # Same key id, different key material: a forger who guessed the label.
        signer = self.single("k1")
        verifier = self.single("k1")
        assert self.verify(verifier, self.sign(signer)).reason is Reason.INVALID

    def test_rotated_keys_both_verify_and_are_named(self) -> None:
        new, old = self.key_material("new"), self.key_material("old")
        verifier = self.make_verifier([new, old])
        assert verifier.key_ids == ("new", "old")
        by_new = self.verify(verifier, self.sign(self.make_verifier([new])))
        by_old = self.verify(verifier, self.sign(self.make_verifier([old])))
        assert (by_new.reason, by_new.key_id) == (Reason.OK, "new")
        assert (by_old.reason, by_old.key_id) == (Reason.OK, "old")
        # The rotated-in key is the one that signs.
        assert self.verify(verifier, self.sign(verifier)).key_id == "new"

    def test_retired_key_no_longer_verifies(self) -> None:
        new, old = self.key_material("new"), self.key_material("old")
        signed_by_old = self.sign(self.make_verifier([old]))
        verdict = self.verify(self.make_verifier([new]), signed_by_old)
        assert verdict.reason in (Reason.INVALID, Reason.UNKNOWN_KEY)

    def test_expiry_edges(self) -> None:
        verifier = self.single()
        expires = NOW + 10
        signed = self.sign(verifier, expires=expires)
        assert self.verify(verifier, signed, expires - 1).reason is Reason.OK
        assert self.verify(verifier, signed, expires).reason is Reason.EXPIRED
        assert self.verify(verifier, signed, expires + 86400).reason is Reason.EXPIRED

    def test_expiry_with_clock_skew(self) -> None:
        verifier = self.single()
        expires = NOW + 10
        signed = self.sign(verifier, expires=expires)
        assert self.verify(verifier, signed, expires + 29, skew=30).reason is Reason.OK
        assert self.verify(verifier, signed, expires + 30, skew=30).reason is Reason.EXPIRED

    def test_expired_and_tampered_is_invalid_not_expired(self) -> None:
        # A forgery must never learn that its expiry is what failed.
        verifier = self.single()
        signed = self.sign(verifier, expires=NOW - 100)
        if self.carrier is Carrier.COOKIE:  # a cookie grant covers any query: change its signature
            value = self.signature(signed)
            forged = self.with_signature(signed, ("a" if value[0] != "a" else "b") + value[1:])
        else:
            forged = self.with_uri(signed, _first_value_changed(signed.uri))
        assert self.verify(verifier, forged).reason is Reason.INVALID

    def test_shareable_only_when_bound_to_nothing_but_the_uri(self) -> None:
        # The auth cache is keyed by the URI alone: an allow won by a cookie is not shared.
        verifier = self.single()
        verdict = self.verify(verifier, self.sign(verifier))
        assert verdict.reason is Reason.OK
        assert verdict.shareable is (self.carrier is not Carrier.COOKIE)
