"""A grant's one identity (``sidecar/schemes/grant_ids.py``): an ECDSA signature and its
twin ``(r, n - s)`` both verify, and are one grant, so a revocation holds for both."""

from __future__ import annotations

import base64
import re

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from sidecar.core.verdict import Reason
from sidecar.schemes import grant_ids
from sidecar.schemes.cloudfront import b64decode, b64encode
from tests.support.cloudfront import ORIGIN, material
from tests.support.jwt_keys import key_for, pyjwt_token
from tests.support.scheme_contract import NOW, build_source, request_uri, sign, verify

ORDERS = {"secp256r1": ec.SECP256R1(), "secp384r1": ec.SECP384R1()}


@pytest.mark.parametrize("curve", ORDERS.values(), ids=ORDERS.keys())
def test_the_twin_verifies_and_has_the_same_identity(curve: ec.EllipticCurve) -> None:
    # Also proves each curve's order: n - s verifies only with the right n.
    private = ec.generate_private_key(curve)
    r, s = decode_dss_signature(private.sign(b"grant", ec.ECDSA(hashes.SHA256())))
    order = _order(curve)
    twin = encode_dss_signature(r, order - s)
    private.public_key().verify(twin, b"grant", ec.ECDSA(hashes.SHA256()))
    assert grant_ids.ecdsa_der(twin, curve) == grant_ids.ecdsa_low_s(r, s, curve)
    low = grant_ids.ecdsa_low_s(r, s, curve)
    assert int.from_bytes(low[len(low) // 2 :]) <= order // 2


def _order(curve: ec.EllipticCurve) -> int:
    return grant_ids._ORDERS[curve.name][0]


def test_a_cloudfront_ecdsa_url_and_its_twin_are_one_grant() -> None:
    verifier = build_source("cloudfront", [material("k1", "ecdsa", "twin")], prefix="/acme/",
                            settings={"public_origin": ORIGIN})  # fmt: skip
    uri = request_uri(sign(verifier, f"{ORIGIN}/acme/a.jpg", expires=NOW + 60))
    value = re.search(r"Signature=([^&]+)", uri)
    assert value is not None
    r, s = decode_dss_signature(b64decode(value.group(1)) or b"")
    twin = b64encode(encode_dss_signature(r, _order(ec.SECP256R1()) - s))
    first, second = verify(verifier, uri), verify(verifier, uri.replace(value.group(1), twin))
    assert first.reason is second.reason is Reason.OK
    assert first.grant == second.grant == grant_ids.ecdsa_low_s(r, s, ec.SECP256R1())


@pytest.mark.parametrize("algorithm", ["ES256", "ES384"])
def test_a_jwt_ecdsa_token_and_its_twin_are_one_grant(algorithm: str) -> None:
    key = key_for(algorithm)
    verifier = build_source("jwt", [key.material()], prefix="/v/")
    token = pyjwt_token(key, {"sub": "/v/a", "exp": NOW + 60})
    head, _, signature_text = token.rpartition(".")
    raw = base64.urlsafe_b64decode(signature_text + "=" * (-len(signature_text) % 4))
    half = len(raw) // 2
    curve = ORDERS["secp256r1" if algorithm == "ES256" else "secp384r1"]
    s = int.from_bytes(raw[half:])
    twin_raw = raw[:half] + (_order(curve) - s).to_bytes(half)
    twin = head + "." + base64.urlsafe_b64encode(twin_raw).rstrip(b"=").decode()
    first, second = verify(verifier, f"/v/a?token={token}"), verify(verifier, f"/v/a?token={twin}")
    assert first.reason is second.reason is Reason.OK
    assert first.grant == second.grant != b""
