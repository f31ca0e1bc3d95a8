"""Scheme ``cloudfront``: URLs signed by botocore's real CloudFrontSigner verify, every
tampering is denied with its reason, a custom policy's conditions hold, and the signing
parameters are read in any order but in one spelling only."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sidecar.core import canonical
from sidecar.core.verdict import Reason
from sidecar.policy.decide import Decider, RequestFacts
from sidecar.schemes.cloudfront import b64decode, b64encode
from tests.support.cloudfront import (
    CLIENT_IP,
    KEY_IDS,
    ORIGIN,
    PATHS,
    SIGNERS,
    canned,
    custom,
    decide,
    param,
    with_param,
)
from tests.support.scheme_contract import NOW


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", sorted(SIGNERS))
def test_botocore_canned_urls_verify(policy: Decider, name: str, path: str) -> None:
    assert decide(policy, canned(name, path)) == (200, Reason.OK)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", sorted(SIGNERS))
def test_botocore_custom_urls_verify(policy: Decider, name: str, path: str) -> None:
    url = custom(name, path, not_before=NOW - 60, ip="203.0.113.0/24")
    assert decide(policy, url) == (200, Reason.OK)


def _flip(url: str, old: str, new: str) -> str:
    assert old in url, (old, url)
    return url.replace(old, new, 1)


def _alter_policy(url: str) -> str:
    document = b64decode(param(url, "Policy"))
    assert document is not None
    return with_param(url, "Policy", b64encode(document.replace(b"acme", b"acmf")))


def _altered_signature(url: str) -> str:
    signature = param(url, "Signature")
    return with_param(url, "Signature", ("B" if signature[0] == "A" else "A") + signature[1:])


def _other_key_signature(url: str) -> str:
    """The same request signed by a key other than the one Key-Pair-Id names."""
    key_id = param(url, "Key-Pair-Id")
    other = "ecdsa-sha1" if key_id == KEY_IDS["rsa"] else "rsa-sha1"
    forged = canned(other, "/acme/a.jpg?w=400&h=600")
    return with_param(url, "Signature", param(forged, "Signature"))


TAMPERINGS: dict[str, tuple[Callable[[str], str], Reason]] = {
    "path": (lambda u: _flip(u, "/a.jpg", "/b.jpg"), Reason.INVALID),
    "param value": (lambda u: _flip(u, "w=400", "w=401"), Reason.INVALID),
    "param added": (lambda u: _flip(u, "?w=400", "?w=400&x=1"), Reason.INVALID),
    "param removed": (lambda u: _flip(u, "w=400&", ""), Reason.INVALID),
    "signature altered": (_altered_signature, Reason.INVALID),
    "signature truncated": (
        lambda u: with_param(u, "Signature", param(u, "Signature")[:-4]),
        Reason.INVALID,
    ),
    "signature cut off": (
        lambda u: with_param(u, "Signature", param(u, "Signature")[:-1]),
        Reason.MALFORMED,
    ),
    "signature of another key": (_other_key_signature, Reason.INVALID),
    "key of another source": (
        lambda u: with_param(u, "Key-Pair-Id", "KOTHER"),
        Reason.UNKNOWN_KEY,
    ),
    "unknown key": (lambda u: with_param(u, "Key-Pair-Id", "KNOPE"), Reason.UNKNOWN_KEY),
    "signature removed": (
        lambda u: _flip(u, f"Signature={param(u, 'Signature')}&", ""),
        Reason.MISSING,
    ),
    "key id removed": (
        lambda u: _flip(u, f"&Key-Pair-Id={param(u, 'Key-Pair-Id')}", ""),
        Reason.MISSING,
    ),
    "signature doubled": (
        lambda u: u + "&Signature=" + param(u, "Signature"),
        Reason.NON_CANONICAL,
    ),
    "expires changed": (
        lambda u: with_param(u, "Expires", str(int(param(u, "Expires")) + 1)),
        Reason.INVALID,
    ),
    "sha256 claimed for sha1": (lambda u: u + "&Hash-Algorithm=SHA256", Reason.INVALID),
    "unknown hash algorithm": (lambda u: u + "&Hash-Algorithm=MD5", Reason.MALFORMED),
}


@pytest.mark.parametrize("tampering", sorted(TAMPERINGS))
@pytest.mark.parametrize("name", ["rsa-sha1", "ecdsa-sha1"])
def test_tampered_canned_urls_are_denied(policy: Decider, name: str, tampering: str) -> None:
    change, reason = TAMPERINGS[tampering]
    url = canned(name, "/acme/a.jpg?w=400&h=600")
    assert decide(policy, url) == (200, Reason.OK)
    if tampering == "signature truncated" and name.startswith("ecdsa"):
        reason = Reason.INVALID  # a shorter DER blob is still well-formed base64
    assert decide(policy, change(url)) == (403, reason)


CUSTOM_TAMPERINGS: dict[str, tuple[Callable[[str], str], Reason]] = {
    "policy altered": (_alter_policy, Reason.INVALID),
    "policy not base64": (lambda u: with_param(u, "Policy", "!!!!"), Reason.MALFORMED),
    "policy and expires": (lambda u: u + "&Expires=2000000000", Reason.MALFORMED),
    "path": (lambda u: _flip(u, "/a.jpg", "/b.jpg"), Reason.INVALID),
    "param added": (lambda u: _flip(u, "?w=400", "?w=400&x=1"), Reason.INVALID),
}


@pytest.mark.parametrize("tampering", sorted(CUSTOM_TAMPERINGS))
@pytest.mark.parametrize("name", ["rsa-sha256", "ecdsa-sha256"])
def test_tampered_custom_urls_are_denied(policy: Decider, name: str, tampering: str) -> None:
    change, reason = CUSTOM_TAMPERINGS[tampering]
    url = custom(name, "/acme/a.jpg?w=400&h=600")
    assert decide(policy, url) == (200, Reason.OK)
    assert decide(policy, change(url)) == (403, reason)


@pytest.mark.parametrize("name", sorted(SIGNERS))
def test_time_and_address_conditions(policy: Decider, name: str) -> None:
    url = custom(name, "/acme/a.jpg", expires=NOW + 100, not_before=NOW + 10, ip="198.51.100.0/24")
    client = "198.51.100.77"
    assert decide(policy, url, NOW + 50, client) == (200, Reason.OK)
    assert decide(policy, url, NOW + 100, client) == (403, Reason.EXPIRED)
    assert decide(policy, url, NOW + 9, client) == (403, Reason.NOT_YET_VALID)
    assert decide(policy, url, NOW + 50, "198.51.101.77") == (403, Reason.IP_MISMATCH)
    assert decide(policy, url, NOW + 50, "::ffff:198.51.100.77") == (200, Reason.OK)
    assert decide(policy, url, NOW + 50, "2001:db8::1") == (403, Reason.IP_MISMATCH)
    assert decide(policy, url, NOW + 50, "not-an-ip") == (403, Reason.IP_MISMATCH)


def test_expired_canned_url(policy: Decider) -> None:
    url = canned("rsa-sha1", "/acme/a.jpg", expires=NOW + 5)
    assert decide(policy, url, NOW + 4) == (200, Reason.OK)
    assert decide(policy, url, NOW + 5) == (403, Reason.EXPIRED)


def test_ipv6_source_ip(policy: Decider) -> None:
    url = custom("ecdsa-sha1", "/acme/a.jpg", ip="2001:db8:abcd::/48")
    assert decide(policy, url, ip="2001:db8:abcd:12::7") == (200, Reason.OK)
    assert decide(policy, url, ip="2001:db8:abce::7") == (403, Reason.IP_MISMATCH)
    assert decide(policy, url, ip="192.0.2.1") == (403, Reason.IP_MISMATCH)


def test_ip_bound_allows_are_never_cached(policy: Decider) -> None:
    bound = custom("rsa-sha1", "/acme/a.jpg", ip="203.0.113.0/24")
    free = canned("rsa-sha1", "/acme/a.jpg", expires=NOW + 30)
    bound_decision = policy.decide(
        RequestFacts(bound.removeprefix(ORIGIN), "GET", None, CLIENT_IP), NOW
    )
    free_decision = policy.decide(
        RequestFacts(free.removeprefix(ORIGIN), "GET", None, CLIENT_IP), NOW
    )
    assert bound_decision.reason is Reason.OK and bound_decision.cache_ttl == 0
    assert free_decision.reason is Reason.OK and 0 < free_decision.cache_ttl <= 30


def test_signing_params_in_any_order(policy: Decider) -> None:
    url = canned("rsa-sha1", "/acme/a.jpg?w=400&h=600")
    path, _, query = url.partition("?")
    params = query.split("&")
    reordered = f"{path}?{params[2]}&w=400&{params[3]}&{params[4]}&h=600"
    assert decide(policy, reordered) == (200, Reason.OK)


def test_encoded_signing_param_names_are_refused(policy: Decider) -> None:
    url = canned("rsa-sha1", "/acme/a.jpg")
    assert decide(policy, url.replace("Signature=", "%53ignature=")) == (403, Reason.MALFORMED)


def test_canonical_is_required_before_verify() -> None:
    assert canonical.parse("/acme/a.jpg?Signature=x#frag") is None
