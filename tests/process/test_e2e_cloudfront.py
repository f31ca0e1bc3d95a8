"""``cloudfront`` end to end: botocore-signed URLs through the real nginx and sidecar."""

from __future__ import annotations

import datetime
import time
import urllib.request
from collections.abc import Iterator

import pytest
from botocore.signers import CloudFrontSigner
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from prometheus_client.parser import text_string_to_metric_families

from sidecar.devtools.local_stack import LocalStack
from sidecar.schemes import cloudfront_keys as keys
from tests.support.configs import cloudfront_source, sidecar_config
from tests.support.requests import fetch, fetch_with_reason
from tests.support.stacks import image_bytes, running_stack

ORIGIN = "https://image.example.com"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    folder = tmp_path_factory.mktemp("cloudfront-e2e")
    for name, kind in (("old", "rsa"), ("new", "ecdsa")):
        private, public = keys.new_key_pair(kind)
        (folder / f"{name}.pem").write_bytes(private)
        (folder / f"{name}.pub.pem").write_bytes(public)
    public_keys = {"KNEWECDSA": str(folder / "new.pub.pem"), "KOLDRSA": str(folder / "old.pub.pem")}
    config = sidecar_config(
        cloudfront_source("acme", "/secret/", public_keys, public_origin=ORIGIN),
        server={"clock_skew": 0},
    )
    with running_stack(folder, config) as running:
        yield running


def signer(stack: LocalStack, name: str, key_id: str) -> CloudFrontSigner:
    private = load_pem_private_key((stack.folder / f"{name}.pem").read_bytes(), password=None)

    def sign(message: bytes) -> bytes:
        if isinstance(private, rsa.RSAPrivateKey):
            return private.sign(message, padding.PKCS1v15(), hashes.SHA1())
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        return private.sign(message, ec.ECDSA(hashes.SHA1()))

    return CloudFrontSigner(key_id, sign)


def expiry(seconds: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(time.time() + seconds, tz=datetime.UTC)


def key_matches(stack: LocalStack) -> dict[str, float]:
    with urllib.request.urlopen(stack.metrics_url, timeout=5) as response:
        text = response.read().decode()
    return {
        sample.labels["key"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "signed_url_key_matches"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels["source"] == "acme"
    }


def test_botocore_url_serves_the_image_and_one_changed_byte_is_403(stack: LocalStack) -> None:
    url = signer(stack, "old", "KOLDRSA").generate_presigned_url(
        ORIGIN + "/secret/x.png?w=640", date_less_than=expiry(300)
    )
    uri = url.removeprefix(ORIGIN)
    status, body = fetch(stack, uri)
    assert status == 200
    assert body == image_bytes(stack, "/secret/x.png")
    refused = 0
    # Every single-byte change of the query (in the signature, policy, ids or the
    # client's own parameters) must be refused.
    start = uri.index("?") + 1
    for index in range(start, len(uri), 7):
        changed = uri[:index] + ("A" if uri[index] != "A" else "B") + uri[index + 1 :]
        status, body = fetch(stack, changed)
        assert status == 403, changed
        assert body != image_bytes(stack, "/secret/x.png")
        refused += 1
    assert refused > 40


def test_custom_policy_with_wildcard_through_nginx(stack: LocalStack) -> None:
    cf = signer(stack, "new", "KNEWECDSA")
    policy = cf.build_policy(ORIGIN + "/secret/*", expiry(300))
    url = cf.generate_presigned_url(ORIGIN + "/secret/x.png", policy=policy)
    assert fetch(stack, url.removeprefix(ORIGIN))[0] == 200
    elsewhere = url.removeprefix(ORIGIN).replace("/secret/x.png", "/public/x.png")
    assert fetch(stack, elsewhere)[0] != 200


def test_expired_botocore_url_is_403(stack: LocalStack) -> None:
    url = signer(stack, "old", "KOLDRSA").generate_presigned_url(
        ORIGIN + "/secret/x.png", date_less_than=expiry(-5)
    )
    status, body, reason = fetch_with_reason(stack, url.removeprefix(ORIGIN))
    assert (status, reason) == (403, "expired")
    assert body != image_bytes(stack, "/secret/x.png")


def test_two_key_pair_ids_verify_and_the_metric_names_the_match(stack: LocalStack) -> None:
    before = key_matches(stack)
    assert set(before) == {"KNEWECDSA", "KOLDRSA"}  # initialised from the config
    old = signer(stack, "old", "KOLDRSA").generate_presigned_url(
        ORIGIN + "/secret/x.png?k=old", date_less_than=expiry(300)
    )
    new = signer(stack, "new", "KNEWECDSA").generate_presigned_url(
        ORIGIN + "/secret/x.png?k=new", date_less_than=expiry(300)
    )
    for _ in range(3):
        assert fetch(stack, new.removeprefix(ORIGIN))[0] == 200
    assert fetch(stack, old.removeprefix(ORIGIN))[0] == 200
    after = key_matches(stack)
    # The auth cache may answer repeats itself: at least one verification each.
    assert after["KOLDRSA"] - before["KOLDRSA"] == 1
    assert 1 <= after["KNEWECDSA"] - before["KNEWECDSA"] <= 3
