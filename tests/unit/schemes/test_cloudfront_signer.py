"""Scheme ``cloudfront``: our signer writes exactly the URLs botocore writes, and refuses
to sign what would never verify."""

from __future__ import annotations

import pytest

from sidecar.core.verdict import Reason
from sidecar.errors import SchemeError, SigningError
from sidecar.policy.decide import Decider
from tests.support.scheme_contract import NOW, sign
from tests.unit.schemes._cloudfront_support import ORIGIN, PATHS, canned, custom, decide


@pytest.mark.parametrize("path", PATHS)
def test_our_canned_urls_equal_botocores(policy: Decider, path: str) -> None:
    source = policy.settings.source("acme")
    assert source is not None and source.verifier is not None
    ours = sign(source.verifier, ORIGIN + path, expires=NOW + 600)
    assert ours == canned("rsa-sha1", path)
    assert decide(policy, ours) == (200, Reason.OK)


@pytest.mark.parametrize("path", PATHS[:3])
def test_our_custom_urls_equal_botocores(policy: Decider, path: str) -> None:
    source = policy.settings.source("acme")
    assert source is not None and source.verifier is not None
    ours = sign(
        source.verifier,
        ORIGIN + path,
        expires=NOW + 600,
        not_before=NOW - 60,
        client_ip="203.0.113.0/24",
    )
    assert ours == custom("rsa-sha1", path, not_before=NOW - 60, ip="203.0.113.0/24")
    wildcard = sign(source.verifier, ORIGIN + path, expires=NOW + 600, resource=f"{ORIGIN}/acme/*")
    assert wildcard == custom("rsa-sha1", path, resource=f"{ORIGIN}/acme/*")


def test_sign_refuses_what_would_never_verify(policy: Decider) -> None:
    source = policy.settings.source("acme")
    assert source is not None and source.verifier is not None
    with pytest.raises(SchemeError):
        sign(source.verifier, "https://elsewhere.example.com/acme/a.jpg", expires=NOW)
    with pytest.raises(SigningError):
        sign(source.verifier, ORIGIN + "/acme/../a.jpg", expires=NOW)
    with pytest.raises(SchemeError):
        sign(source.verifier, ORIGIN + "/acme/a.jpg?Expires=1", expires=NOW)
    with pytest.raises(SchemeError):
        sign(source.verifier, ORIGIN + "/acme/a.jpg")  # no expiry
    with pytest.raises(SchemeError):
        sign(source.verifier, ORIGIN + "/acme/a.jpg", expires=NOW, client_ip="nope")
