"""Scheme ``cloudfront``: a signature verified once is remembered (the RSA or ECDSA cost is
paid once per popular URL), while what it grants is checked on every request."""

from __future__ import annotations

import pytest

from sidecar.core.verdict import Reason
from sidecar.policy.decide import Decider
from sidecar.policy.settings import SourceSettings
from sidecar.schemes.cloudfront import CloudFrontSource
from sidecar.schemes.signature_cache import VerifiedSignatures
from tests.support.cloudfront import canned, custom, decide, param, with_param
from tests.support.scheme_contract import NOW


def remembered(policy: Decider) -> int:
    """How many verified signatures the ``acme`` source holds."""
    source = policy.settings.source("acme")
    assert isinstance(source, SourceSettings) and isinstance(source.signatures, CloudFrontSource)
    return len(source.signatures._verified)  # the cache under test


@pytest.mark.parametrize("name", ["rsa-sha256", "ecdsa-sha1"])
def test_a_repeated_url_is_verified_once_and_remembered(policy: Decider, name: str) -> None:
    url = canned(name, f"/acme/cached-{name}.jpg")
    before = remembered(policy)
    assert decide(policy, url) == (200, Reason.OK)
    assert remembered(policy) == before + 1
    assert decide(policy, url) == (200, Reason.OK)
    assert remembered(policy) == before + 1  # the same entry answered


def test_a_forged_signature_is_never_remembered(policy: Decider) -> None:
    url = canned("rsa-sha256", "/acme/forged.jpg")
    signature = param(url, "Signature")
    forged = with_param(url, "Signature", ("B" if signature[0] == "A" else "A") + signature[1:])
    before = remembered(policy)
    for _ in range(3):
        assert decide(policy, forged) == (403, Reason.INVALID)
    assert remembered(policy) == before


def test_expiry_is_checked_on_every_request_of_a_remembered_url(policy: Decider) -> None:
    url = canned("rsa-sha256", "/acme/expiring.jpg", expires=NOW + 60)
    assert decide(policy, url) == (200, Reason.OK)
    assert decide(policy, url, now=NOW + 60 + 31) == (403, Reason.EXPIRED)  # skew 30 s


def test_a_custom_policys_conditions_hold_for_a_remembered_url(policy: Decider) -> None:
    url = custom("ecdsa-sha256", "/acme/by-ip.jpg", ip="203.0.113.0/24", not_before=NOW + 300)
    assert decide(policy, url, now=NOW + 400) == (200, Reason.OK)
    assert decide(policy, url, now=NOW + 400, ip="198.51.100.7") == (403, Reason.IP_MISMATCH)
    assert decide(policy, url, now=NOW) == (403, Reason.NOT_YET_VALID)


def test_the_cache_is_bounded_and_drops_the_oldest() -> None:
    cache = VerifiedSignatures(size=3)
    for entry in range(5):
        cache.add(entry)
    assert len(cache) == 3
    assert 0 not in cache and 1 not in cache and 4 in cache
