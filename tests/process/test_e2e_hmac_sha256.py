"""``hmac-sha256`` end to end: signed URLs through the real nginx and sidecar."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from sidecar import config
from sidecar.core.encodings import URLSAFE_NOPAD
from sidecar.devtools.local_stack import LocalStack
from sidecar.policy.signing import sign_request, sign_url
from sidecar.schemes.base import Grant
from tests.support.configs import sidecar_config, source_toml
from tests.support.requests import HOST, fetch, fetch_with_reason
from tests.support.stacks import StackFactory, image_bytes

ORIGIN = f"https://{HOST}"
SECRET = "e2e-hmac-sha256-secret-8c2f41"
OLD_SECRET = "e2e-hmac-sha256-older-secret-19"
BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest.fixture(scope="module")
def stack(shared_stacks: StackFactory) -> LocalStack:
    keys = {"2026-11": {"secret": SECRET}, "2026-05": {"secret": OLD_SECRET}}
    source = source_toml("acme", "hmac-sha256", "/secret/", keys, max_ttl=3600)
    return shared_stacks(sidecar_config(source, server={"clock_skew": 0}))


def signed_uri(stack: LocalStack, url: str, expires_in: int = 300) -> str:
    settings = config.load(stack.config_path)
    signed = sign_url(settings, "acme", ORIGIN + url, now=time.time(), expires_in=expires_in)
    return signed.removeprefix(ORIGIN)


def hand_signed(secret: str, unsigned: str) -> str:
    """The format as its docstring states it, computed here with the standard library."""
    mac = hmac.new(secret.encode(), unsigned.encode(), hashlib.sha256).digest()
    return f"{unsigned}&sig={base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def changed(char: str) -> str:
    """Another character of the same kind, so a change stays well formed: digits stay
    non-zero (no leading zero), base64url characters stay base64url."""
    if char.isdigit():
        return "1" if char != "1" else "2"
    if char in BASE64URL:
        return BASE64URL[(BASE64URL.index(char) + 4) % 64]  # same low two bits
    return "x"


def value_span(uri: str, name: str) -> range:
    start = uri.index(f"&{name}=") + len(name) + 2
    end = uri.find("&", start)
    return range(start, len(uri) if end < 0 else end)


def expected_reason(uri: str, index: int, tampered: str) -> str:
    """What the sidecar must answer for ``uri`` (``...&expires=E&kid=K&sig=S``, as our
    signer writes it) with the byte at ``index`` changed."""
    if index < uri.index("&expires="):  # the path and the client's own parameters
        return "missing" if index == uri.index("?") else "invalid"
    if index in value_span(uri, "kid"):
        return "unknown_key"
    if index in value_span(uri, "sig"):
        signature = tampered.rpartition("=")[2]
        return "invalid" if URLSAFE_NOPAD.decode(signature) is not None else "malformed"
    if index in value_span(uri, "expires"):
        return "invalid"
    return "missing"  # a signing parameter's name or separator: that parameter is gone


def test_freshly_signed_url_serves_the_image(stack: LocalStack) -> None:
    uri = signed_uri(stack, "/secret/x.png?w=640")
    status, body, reason = fetch_with_reason(stack, uri)
    assert (status, reason) == (200, "ok")
    assert body == image_bytes(stack, "/secret/x.png")
    assert "&kid=2026-11&sig=" in uri


def test_every_changed_byte_is_403_with_its_reason(stack: LocalStack) -> None:
    uri = signed_uri(stack, "/secret/x.png?w=640")
    answers: dict[str, int] = {}
    # Every byte after the source's prefix: path, parameters, expiry, kid and signature.
    for index in range(len("/secret/"), len(uri)):
        tampered = uri[:index] + changed(uri[index]) + uri[index + 1 :]
        expected = expected_reason(uri, index, tampered)
        status, body, reason = fetch_with_reason(stack, tampered)
        assert (status, reason) == (403, expected), tampered
        assert body != image_bytes(stack, "/secret/x.png")
        answers[reason] = answers.get(reason, 0) + 1
    assert answers["invalid"] > 50
    assert answers["unknown_key"] == len("2026-11")
    assert answers["missing"] >= 3


def test_expired_is_403_expired(stack: LocalStack) -> None:
    source = config.load(stack.config_path).source("acme")
    assert source is not None and source.signatures is not None
    request = sign_request(ORIGIN + "/secret/x.png", Grant(expires=int(time.time()) - 5))
    uri = source.signatures.sign(request).url.removeprefix(ORIGIN)
    status, body, reason = fetch_with_reason(stack, uri)
    assert (status, reason) == (403, "expired")
    assert body != image_bytes(stack, "/secret/x.png")


def test_a_hand_signed_url_with_the_older_key_is_served(stack: LocalStack) -> None:
    expires = int(time.time()) + 120
    uri = hand_signed(OLD_SECRET, f"/secret/x.png?expires={expires}&kid=2026-05")
    assert fetch(stack, uri) == (200, image_bytes(stack, "/secret/x.png"))
    # The same signature under the other kid: that key is the one checked, and it fails.
    relabelled = hand_signed(OLD_SECRET, f"/secret/x.png?expires={expires}&kid=2026-11")
    status, _, reason = fetch_with_reason(stack, relabelled)
    assert (status, reason) == (403, "invalid")


def test_max_ttl_holds_on_verify(stack: LocalStack) -> None:
    # A correctly signed URL living longer than the source's max_ttl (3600 s) is refused.
    too_long = hand_signed(SECRET, f"/secret/x.png?expires={int(time.time()) + 7200}&kid=2026-11")
    status, _, reason = fetch_with_reason(stack, too_long)
    assert (status, reason) == (403, "invalid")


def test_missing_parts_are_403_missing(stack: LocalStack) -> None:
    expires = int(time.time()) + 120
    for uri in (
        "/secret/x.png",
        hand_signed(SECRET, "/secret/x.png?kid=2026-11"),
        hand_signed(SECRET, f"/secret/x.png?expires={expires}"),
    ):
        status, _, reason = fetch_with_reason(stack, uri)
        assert (status, reason) == (403, "missing"), uri
