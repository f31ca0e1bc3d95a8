"""Scheme ``cloudfront``: our signer writes exactly the URLs botocore writes, and refuses
to sign what would never verify."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from sidecar import config
from sidecar.core.verdict import Reason
from sidecar.errors import SchemeError, SigningError
from sidecar.policy.decide import Decider, RequestFacts
from sidecar.policy.signing import sign_url
from sidecar.schemes.cloudfront import b64decode, b64encode
from sidecar.schemes.cloudfront_keys import new_key_pair
from tests.support.cloudfront import ORIGIN, PATHS, canned, custom, decide
from tests.support.scheme_contract import NOW, sign


@pytest.mark.parametrize("path", PATHS)
def test_our_canned_urls_equal_botocores(policy: Decider, path: str) -> None:
    source = policy.settings.source("acme")
    assert source is not None and source.signatures is not None
    ours = sign(source.signatures, ORIGIN + path, expires=NOW + 600)
    assert ours == canned("rsa-sha1", path)
    assert decide(policy, ours) == (200, Reason.OK)


@pytest.mark.parametrize("path", PATHS[:3])
def test_our_custom_urls_equal_botocores(policy: Decider, path: str) -> None:
    source = policy.settings.source("acme")
    assert source is not None and source.signatures is not None
    ours = sign(
        source.signatures,
        ORIGIN + path,
        expires=NOW + 600,
        not_before=NOW - 60,
        client_ip="203.0.113.0/24",
    )
    assert ours == custom("rsa-sha1", path, not_before=NOW - 60, ip="203.0.113.0/24")
    resource = f"{ORIGIN}/acme/*"
    wildcard = sign(source.signatures, ORIGIN + path, expires=NOW + 600, resource=resource)
    assert wildcard == custom("rsa-sha1", path, resource=f"{ORIGIN}/acme/*")


def test_sign_refuses_what_would_never_verify(policy: Decider) -> None:
    source = policy.settings.source("acme")
    assert source is not None and source.signatures is not None
    with pytest.raises(SchemeError):
        sign(source.signatures, "https://elsewhere.example.com/acme/a.jpg", expires=NOW)
    with pytest.raises(SigningError):
        sign(source.signatures, ORIGIN + "/acme/../a.jpg", expires=NOW)
    with pytest.raises(SchemeError):
        sign(source.signatures, ORIGIN + "/acme/a.jpg?Expires=1", expires=NOW)
    with pytest.raises(SchemeError):
        sign(source.signatures, ORIGIN + "/acme/a.jpg")  # no expiry
    with pytest.raises(SchemeError):
        sign(source.signatures, ORIGIN + "/acme/a.jpg", expires=NOW, client_ip="nope")


# --- the spellings a signed URL still has (docs/security.md lists the twins) ---------------


class TestSpellingsOfASignedUrl:
    # The order n of the P-256 group (SEC 2, secp256r1).
    SECP256R1_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

    def test_the_spellings_a_signed_cloudfront_url_still_has(self, tmp_path: Path) -> None:
        private, public = new_key_pair("ecdsa")
        (tmp_path / "k.pem").write_bytes(private)
        (tmp_path / "k.pub.pem").write_bytes(public)
        (tmp_path / "sidecar.toml").write_text(
            '[[sources]]\nname = "acme"\nscheme = "cloudfront"\npath_prefix = "/acme/"\n'
            'public_origin = "https://cdn.example.com"\n[[sources.keys]]\nid = "KEC"\n'
            'public_key_file = "k.pub.pem"\nprivate_key_file = "k.pem"\n'
        )
        policy = Decider(config.load(tmp_path / "sidecar.toml", environ={}))

        def reason(uri: str) -> Reason:
            return policy.decide(RequestFacts(uri, "GET", "image.example.com"), NOW).reason

        url = sign_url(policy.settings, "acme", "https://cdn.example.com/acme/a.jpg?w=1", now=NOW,
                       expires_in=600).removeprefix("https://cdn.example.com")  # fmt: skip
        assert reason(url) is Reason.OK
        path_part, _, query = url.partition("?")
        params = dict(pair.split("=", 1) for pair in query.split("&"))
        # Parameters in another order (AWS SDKs differ): the same grant.
        signature, expires = params["Signature"], params["Expires"]
        reordered = f"{path_part}?Key-Pair-Id=KEC&w=1&Signature={signature}&Expires={expires}"
        assert reason(reordered) is Reason.OK
        # ECDSA's (r, n - s) twin: malleable by design, so it verifies too.
        r, s = decode_dss_signature(b64decode(params["Signature"]) or b"")
        twin = b64encode(encode_dss_signature(r, self.SECP256R1_ORDER - s))
        assert reason(url.replace(params["Signature"], twin)) is Reason.OK
        # And a spelling no signer makes: a repeated signing parameter.
        assert reason(url + "&Expires=" + params["Expires"]) is Reason.NON_CANONICAL
